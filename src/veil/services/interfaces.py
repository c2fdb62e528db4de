"""The small interfaces the services meet each other through.

    StorageService   the storage server core, as the HTTP adapter sees it (sync,
                     in-process; raises ``veil.errors.StorageError`` subclasses
                     whose ``status`` is the HTTP status to answer with)
    StorageClient    one storage server, as the uploader and downloader see it
                     (async; implemented over HTTPS, or in-process for tests)

Not here: how shares are stored (``veil.services.backend``), how bytes travel
(``veil.adapters``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# 16 raw bytes; b32 form (26 chars) in paths and on disk.
StorageIndex = bytes
ShareNumber = int

PROTOCOL_V1 = b"http://allmydata.org/tahoe/protocols/storage/v1"
MAX_MUTABLE_SHARE_SIZE = 69105 * 10**12


@dataclass(frozen=True)
class VersionInfo:
    """What ``GET /storage/v1/version`` reports."""

    maximum_immutable_share_size: int
    maximum_mutable_share_size: int
    available_space: int
    application_version: bytes


@dataclass(frozen=True)
class AllocateResult:
    already_have: frozenset[ShareNumber]
    allocated: frozenset[ShareNumber]


@dataclass(frozen=True)
class ByteRange:
    """Half-open range [begin, end)."""

    begin: int
    end: int


@dataclass(frozen=True)
class WriteResult:
    """After a PATCH: the ranges still missing; ``complete`` when none remain."""

    required: tuple[ByteRange, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        return not self.required


class StorageService(Protocol):
    """The storage server core. Every method is synchronous and validates input.

    Errors: ``NotFound`` (404), ``Unauthorized`` (401), ``Conflict`` (409),
    ``BadRequest`` (400), ``NotAllowed`` (405), ``ServerFull`` — see
    ``veil.errors``. Nothing is changed when an error is raised.
    """

    def get_version(self) -> VersionInfo: ...

    def allocate_buckets(
        self,
        storage_index: StorageIndex,
        share_numbers: frozenset[ShareNumber],
        allocated_size: int,
        *,
        renew_secret: bytes,
        cancel_secret: bytes,
        upload_secret: bytes,
    ) -> AllocateResult: ...

    def write_share_chunk(
        self,
        storage_index: StorageIndex,
        share_number: ShareNumber,
        offset: int,
        data: bytes,
        *,
        upload_secret: bytes,
    ) -> WriteResult: ...

    def abort_upload(
        self, storage_index: StorageIndex, share_number: ShareNumber, *, upload_secret: bytes
    ) -> None: ...

    def list_shares(self, storage_index: StorageIndex) -> frozenset[ShareNumber]: ...

    def share_length(self, storage_index: StorageIndex, share_number: ShareNumber) -> int: ...

    def read_share_chunk(
        self, storage_index: StorageIndex, share_number: ShareNumber, offset: int, length: int
    ) -> bytes:
        """Up to ``length`` bytes from ``offset``; short or empty past the end."""
        ...

    def advise_corrupt_share(
        self, storage_index: StorageIndex, share_number: ShareNumber, reason: str
    ) -> None: ...

    def add_or_renew_lease(
        self, storage_index: StorageIndex, *, renew_secret: bytes, cancel_secret: bytes
    ) -> None: ...


class StorageClient(Protocol):
    """One storage server, from the client side. All methods are coroutines.

    Errors: ``veil.errors.ServerUnavailable`` when the server cannot be reached
    or times out, ``veil.errors.RemoteError`` when it answers out of protocol,
    and the ``StorageError`` subclasses when it refuses a request.
    """

    @property
    def server_id(self) -> str:
        """Stable identifier, e.g. ``v0-<b32 ed25519 key>``."""
        ...

    @property
    def lease_seed(self) -> bytes:
        """20-byte value that lease secrets are bound to (the fURL tubid)."""
        ...

    @property
    def permutation_seed(self) -> bytes: ...

    async def get_version(self) -> VersionInfo: ...

    async def allocate_buckets(
        self,
        storage_index: StorageIndex,
        share_numbers: frozenset[ShareNumber],
        allocated_size: int,
        *,
        renew_secret: bytes,
        cancel_secret: bytes,
        upload_secret: bytes,
    ) -> AllocateResult: ...

    async def write_share_chunk(
        self,
        storage_index: StorageIndex,
        share_number: ShareNumber,
        offset: int,
        data: bytes,
        *,
        upload_secret: bytes,
    ) -> WriteResult: ...

    async def abort_upload(
        self, storage_index: StorageIndex, share_number: ShareNumber, *, upload_secret: bytes
    ) -> None: ...

    async def list_shares(self, storage_index: StorageIndex) -> frozenset[ShareNumber]: ...

    async def read_share_chunk(
        self, storage_index: StorageIndex, share_number: ShareNumber, offset: int, length: int
    ) -> bytes: ...

    async def advise_corrupt_share(
        self, storage_index: StorageIndex, share_number: ShareNumber, reason: str
    ) -> None: ...

    async def add_or_renew_lease(
        self, storage_index: StorageIndex, *, renew_secret: bytes, cancel_secret: bytes
    ) -> None: ...

    async def close(self) -> None: ...
