"""The small interfaces the services meet each other through.

    StorageService   the storage server core, as the HTTP adapter sees it (sync,
                     in-process; raises ``veil.errors.StorageError`` subclasses
                     whose ``status`` is the HTTP status to answer with)
    StorageClient    one storage server, as the uploader and downloader see it
                     (async; implemented over HTTPS, or in-process for tests)

Not here: how shares are stored (``veil.services.storage.backend``), how bytes travel
(``veil.adapters``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from veil.formats.storage_types import (
    MAX_MUTABLE_SHARE_SIZE,
    PROTOCOL_V1,
    AllocateResult,
    ByteRange,
    ShareNumber,
    StorageIndex,
    TestWrite,
    TestWriteResult,
    VersionInfo,
    WriteResult,
)
from veil.formats.wire_batch import BatchUpload, BatchUploadResult

__all__ = [
    "MAX_MUTABLE_SHARE_SIZE",
    "PROTOCOL_V1",
    "AllocateResult",
    "BatchStorageClient",
    "ByteRange",
    "ShareNumber",
    "StorageClient",
    "StorageIndex",
    "StorageService",
    "VersionInfo",
    "WriteResult",
]


class StorageService(Protocol):
    """The storage server core. Every method is synchronous and validates input.

    Errors: ``NotFound`` (404), ``Unauthorized`` (401), ``Conflict`` (409),
    ``BadRequest`` (400), ``NotAllowed`` (405), ``ServerFull`` — see
    ``veil.errors``. Nothing is changed when an error is raised.
    """

    def get_version(self) -> VersionInfo: ...

    def deferred_flush(self) -> AbstractContextManager[Callable[[], None]]:
        """Within it, shares completed are not flushed one by one; the function it
        gives flushes them all, from any thread (call it before answering)."""
        ...

    def allocate_buckets(
        self,
        storage_index: StorageIndex,
        share_numbers: frozenset[ShareNumber],
        allocated_size: int,
        *,
        renew_secret: bytes,
        cancel_secret: bytes,
        upload_secret: bytes,
        account: int = 0,
    ) -> AllocateResult:
        """``account``: whose leases these are (``veil.services.storage.accounts``)."""
        ...

    def write_share_chunk(
        self,
        storage_index: StorageIndex,
        share_number: ShareNumber,
        offset: int,
        data: bytes | memoryview,
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
        self,
        storage_index: StorageIndex,
        *,
        renew_secret: bytes,
        cancel_secret: bytes,
        account: int = 0,
    ) -> None: ...

    def mutable_read_test_write(
        self,
        storage_index: StorageIndex,
        vectors: dict[int, TestWrite],
        read_vector: list[tuple[int, int]],
        *,
        write_enabler: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        account: int = 0,
    ) -> TestWriteResult:
        """Tahoe's slot_testv_and_readv_and_writev (see services.storage.mutable_store)."""
        ...

    def mutable_list_shares(self, storage_index: StorageIndex) -> frozenset[ShareNumber]: ...

    def mutable_share_length(
        self, storage_index: StorageIndex, share_number: ShareNumber
    ) -> int: ...

    def mutable_read(
        self, storage_index: StorageIndex, share_number: ShareNumber, offset: int, length: int
    ) -> bytes: ...

    def mutable_advise_corrupt(
        self, storage_index: StorageIndex, share_number: ShareNumber, reason: str
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
        data: bytes | memoryview,
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

    async def mutable_list_shares(self, storage_index: StorageIndex) -> frozenset[ShareNumber]: ...

    async def mutable_read(
        self, storage_index: StorageIndex, share_number: ShareNumber, offset: int, length: int
    ) -> bytes: ...

    async def mutable_read_test_write(
        self,
        storage_index: StorageIndex,
        vectors: dict[int, TestWrite],
        read_vector: list[tuple[int, int]],
        *,
        write_enabler: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
    ) -> TestWriteResult: ...

    async def mutable_advise_corrupt(
        self, storage_index: StorageIndex, share_number: ShareNumber, reason: str
    ) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class BatchStorageClient(Protocol):
    """A storage client that can speak veil's batch extension (``wire_batch``).

    Only used with servers whose version offers it (``offers_batch``); the
    errors are those of ``StorageClient``.
    """

    async def upload_batch(self, items: list[BatchUpload]) -> list[BatchUploadResult]: ...

    async def read_batch(self, storage_indexes: list[bytes]) -> list[dict[int, bytes | int]]: ...

    async def mutable_read_batch(self, storage_index: bytes, length: int) -> dict[int, bytes]:
        """Only with servers whose version offers ``MUTABLE_READ_EXTENSION``."""
        ...
