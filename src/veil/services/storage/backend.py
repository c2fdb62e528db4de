"""Where a storage server keeps shares: the ``Backend`` contract.

Implementations: ``veil.adapters.storage.disk.DiskBackend`` (Tahoe's storage
directory layout, usable in place of a Tahoe server's),
``veil.adapters.storage.s3.S3Backend`` (an S3 bucket, docs/s3.md) and
``veil.adapters.storage.memory.MemoryBackend`` (a verified in-memory fake).
All three pass the same conformance suite (``veil.testing.backend_conformance``).

Contract:
- An incoming share is invisible (not listed, not readable) until
  ``finalize``; ``abort`` removes it. A crash before ``finalize`` leaves no
  readable share.
- ``finalize`` is durable when it returns (disk: data and directory fsynced).
- Share numbers and storage indexes are validated by the caller.
- Errors are ``OSError`` (disk full, permissions); the core reports them.
- A share whose container cannot be parsed (garbage header, truncated file,
  lease count beyond the file) is treated as absent: not listed, ``KeyError``
  on reads, replaced by a new upload of it. ``report_unreadable`` logs it once.
"""

from __future__ import annotations

import logging
import weakref
from typing import Protocol

from veil.formats import base32
from veil.formats.container import Lease

log = logging.getLogger("veil.storage")
_REPORTED: weakref.WeakKeyDictionary[object, set[tuple[bytes, int]]] = weakref.WeakKeyDictionary()
_MAX_REPORTED = 10_000  # per backend; beyond that every read logs again


def report_unreadable(
    backend: object, storage_index: bytes, share_number: int, problem: str
) -> None:
    """Log, once per backend and share, that a stored share cannot be read."""
    reported = _REPORTED.setdefault(backend, set())
    key = (storage_index, share_number)
    if key in reported:
        return
    if len(reported) < _MAX_REPORTED:
        reported.add(key)
    where = f"{base32.b2a(storage_index)[:8]}-sh{share_number}"
    log.error("stored share %s is unreadable and treated as absent: %s", where, problem)


class IncomingShare(Protocol):
    def write(self, offset: int, data: bytes | memoryview) -> None: ...

    def read(self, offset: int, length: int) -> bytes: ...

    def finalize(self, leases: list[Lease]) -> None: ...

    def abort(self) -> None: ...


class Backend(Protocol):
    def list_shares(self, storage_index: bytes) -> frozenset[int]: ...

    def create_incoming(
        self, storage_index: bytes, share_number: int, allocated_size: int
    ) -> IncomingShare: ...

    def share_length(self, storage_index: bytes, share_number: int) -> int:
        """Length of a finished share's data; ``KeyError`` if there is none."""
        ...

    def read_share(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes: ...

    def get_leases(self, storage_index: bytes, share_number: int) -> list[Lease]: ...

    def set_leases(self, storage_index: bytes, share_number: int, leases: list[Lease]) -> None: ...

    def uses_hashed_leases(self, storage_index: bytes, share_number: int) -> bool: ...

    def add_corruption_advisory(
        self, storage_index: bytes, share_number: int, reason: str
    ) -> None: ...

    def corruption_advisory_bytes(self) -> int:
        """How many bytes the stored corruption advisories take."""
        ...

    def free_space(self) -> int: ...

    # Mutable containers, as raw bytes (``veil.formats.mutable_container``):
    # ``read_slot`` raises ``KeyError`` for a missing one; ``write_slot`` creates
    # it and is durable when it returns; a missing range reads as fewer bytes.

    def list_slots(self, storage_index: bytes) -> frozenset[int]: ...

    def read_slot(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes: ...

    def write_slot(
        self, storage_index: bytes, share_number: int, writes: list[tuple[int, bytes]]
    ) -> None: ...

    def delete_slot(self, storage_index: bytes, share_number: int) -> None: ...
