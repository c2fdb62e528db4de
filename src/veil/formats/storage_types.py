"""Values exchanged with a storage server (the nouns of the HTTP storage protocol)."""

from __future__ import annotations

from dataclasses import dataclass, field

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


class IdentifiedServer:
    """Base of storage clients: the identity facts every ``StorageClient`` exposes."""

    def __init__(self, *, server_id: str, lease_seed: bytes, permutation_seed: bytes) -> None:
        self._server_id = server_id
        self._lease_seed = lease_seed
        self._permutation_seed = permutation_seed

    @property
    def server_id(self) -> str:
        """Stable identifier, e.g. ``v0-<b32 ed25519 key>``."""
        return self._server_id

    @property
    def lease_seed(self) -> bytes:
        """20-byte value lease secrets are bound to (the fURL tubid)."""
        return self._lease_seed

    @property
    def permutation_seed(self) -> bytes:
        """What the server is sorted by on the permuted ring."""
        return self._permutation_seed


@dataclass(frozen=True)
class TestWrite:
    """What to do to one mutable share: tests (offset, size, specimen), writes
    (offset, data), and an optional new length (0 deletes the share)."""

    __test__ = False  # not a pytest test class

    tests: tuple[tuple[int, int, bytes], ...] = ()
    writes: tuple[tuple[int, bytes], ...] = ()
    new_length: int | None = None


@dataclass(frozen=True)
class TestWriteResult:
    """Whether every test passed, and the read vector's bytes per share."""

    __test__ = False

    success: bool
    data: dict[int, list[bytes]]
