"""The storage server's side of mutable files: slots, test-and-write, reads.

Tahoe's semantics (digest §1.11), over a ``Backend``'s raw containers:

1. the presented write enabler must match every existing share of the slot
   (constant-time; else ``Unauthorized``, HTTP 401);
2. every test vector element ``(offset, size, specimen)`` must equal what the
   share holds there (a missing share reads as empty); only equality exists;
3. the read vector is evaluated on all existing shares *before* writing;
4. only if every test passed: per named share, ``new_length == 0`` deletes
   it; else writes are applied in order (a hole reads as zeros), then the
   data is truncated to ``new_length`` when that is smaller; then a lease is
   added or renewed on every share of the slot.

A write that makes the slot's data longer first asks ``admit_growth`` (the
server's quota check, ``veil.services.storage.accounts``), which may refuse it
before anything is written.

One lock per storage index makes each call atomic against the others.
``[storage] readonly`` does not apply here: as in Tahoe 1.20 (whose
``slot_testv_and_readv_and_writev`` never looks at ``readonly_storage``), a
read-only server refuses new immutable shares only and keeps mutable files
healthy.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from veil.errors import BadRequest, FormatError, NotFound, Unauthorized
from veil.formats.container import LEASE_DURATION
from veil.formats.mutable_container import (
    DATA_OFFSET,
    MAX_SIZE,
    MutableHeader,
    MutableLease,
    new_header,
    parse_header,
)
from veil.formats.storage_types import TestWrite, TestWriteResult
from veil.services.storage.backend import Backend, report_unreadable

MAX_VECTOR = 30  # Tahoe's CDDL: at most 30 test or read elements


class MutableStore:
    def __init__(self, backend: Backend, nodeid: bytes) -> None:
        self.backend = backend
        self.nodeid = nodeid
        self._locks: dict[bytes, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, si: bytes) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(si, threading.Lock())

    def _header(self, si: bytes, shnum: int) -> MutableHeader:
        """A share's header; ``KeyError`` if it is missing or not a valid container
        (then it is logged once and treated as absent: a write replaces it)."""
        try:
            return parse_header(self.backend.read_slot(si, shnum, 0, DATA_OFFSET))
        except FormatError as exc:
            report_unreadable(self.backend, si, shnum, str(exc))
            raise KeyError(shnum) from None

    def _headers(self, si: bytes) -> dict[int, MutableHeader]:
        """The readable shares of a slot."""
        out = {}
        for sh in self.backend.list_slots(si):
            try:
                out[sh] = self._header(si, sh)
            except KeyError:
                continue
        return out

    def _read(self, si: bytes, shnum: int, header: MutableHeader, offset: int, size: int) -> bytes:
        size = max(0, min(size, header.data_length - offset))
        if size == 0:
            return b""
        return self.backend.read_slot(si, shnum, DATA_OFFSET + offset, size)

    def list_shares(self, si: bytes) -> frozenset[int]:
        return frozenset(self._headers(si))

    def read(self, si: bytes, shnum: int, offset: int, size: int) -> bytes:
        """Bytes of a share's data, clipped to its length; ``NotFound`` if none."""
        try:
            header = self._header(si, shnum)
        except KeyError:
            raise NotFound(f"no mutable share {shnum}") from None
        return self._read(si, shnum, header, offset, size)

    def data_length(self, si: bytes, shnum: int) -> int:
        try:
            return self._header(si, shnum).data_length
        except KeyError:
            raise NotFound(f"no mutable share {shnum}") from None

    def read_test_write(
        self,
        si: bytes,
        *,
        write_enabler: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        vectors: dict[int, TestWrite],
        read_vector: list[tuple[int, int]],
        owner: int = 1,
        admit_growth: Callable[[int], None] | None = None,
    ) -> TestWriteResult:
        if len(read_vector) > MAX_VECTOR or any(
            len(v.tests) > MAX_VECTOR for v in vectors.values()
        ):
            raise BadRequest(f"at most {MAX_VECTOR} test or read elements")
        for v in vectors.values():
            for offset, chunk in v.writes:
                if offset + len(chunk) > MAX_SIZE:
                    raise BadRequest("a write beyond 1 TiB")
        with self._lock(si):
            headers = self._headers(si)
            for header in headers.values():
                if not hmac.compare_digest(header.write_enabler, write_enabler):
                    raise Unauthorized("wrong write enabler for this mutable file")
            ok = all(
                self._read(si, sh, headers[sh], off, size) == specimen
                if sh in headers
                else specimen == b""
                for sh, v in vectors.items()
                for off, size, specimen in v.tests
            )
            data = {
                sh: [self._read(si, sh, h, off, size) for off, size in read_vector]
                for sh, h in headers.items()
            }
            if not ok:
                return TestWriteResult(False, data)
            if admit_growth is not None:
                admit_growth(_growth(headers, vectors))
            for sh, v in vectors.items():
                if v.new_length == 0:
                    self.backend.delete_slot(si, sh)
                    headers.pop(sh, None)
                    continue
                headers[sh] = self._apply(si, sh, headers.get(sh), write_enabler, v)
            for sh, header in headers.items():
                self._renew(si, sh, header, renew_secret, cancel_secret, owner)
            return TestWriteResult(True, data)

    def _apply(
        self, si: bytes, sh: int, header: MutableHeader | None, we: bytes, v: TestWrite
    ) -> MutableHeader:
        if header is None:
            self.backend.delete_slot(si, sh)  # an unreadable container is replaced whole
            header = new_header(self.nodeid, we)
        length = header.data_length
        writes: list[tuple[int, bytes]] = []
        for offset, data in v.writes:
            if offset > length:  # a hole reads as zeros, even over the old trailer
                writes.append((DATA_OFFSET + length, bytes(offset - length)))
            writes.append((DATA_OFFSET + offset, data))
            length = max(length, offset + len(data))
        if v.new_length is not None and v.new_length < length:
            length = v.new_length
        header = replace(header, data_length=length)
        writes.append((0, header.pack()))
        writes.append((DATA_OFFSET + length, header.trailer()))
        self.backend.write_slot(si, sh, writes)
        return header

    def _renew(
        self, si: bytes, sh: int, header: MutableHeader, renew: bytes, cancel: bytes, owner: int
    ) -> None:
        expiry = int(time.time()) + LEASE_DURATION
        leases = list(header.leases)
        for i, lease in enumerate(leases):
            if lease.matches_renew(renew):
                leases[i] = replace(lease, expiry=max(lease.expiry, expiry))
                break
        else:
            new = MutableLease.create(
                renew, cancel, expiry, self.nodeid, hashed=header.hashed, owner=owner
            )
            leases = [*leases, new][-4:]  # four slots; the oldest gives way
        self.backend.write_slot(si, sh, [(0, replace(header, leases=tuple(leases)).pack())])

    def renew_leases(self, si: bytes, renew: bytes, cancel: bytes, *, owner: int = 1) -> bool:
        """Add or renew a lease on every share of a slot; False if there is none."""
        with self._lock(si):
            headers = self._headers(si)
            for sh, header in headers.items():
                self._renew(si, sh, header, renew, cancel, owner)
            return bool(headers)


def _growth(headers: dict[int, MutableHeader], vectors: dict[int, TestWrite]) -> int:
    """How many bytes longer the named shares' data gets (negative: shorter)."""
    total = 0
    for sh, v in vectors.items():
        old = headers[sh].data_length if sh in headers else 0
        if v.new_length == 0:
            total -= old
            continue
        length = old
        for offset, chunk in v.writes:
            length = max(length, offset + len(chunk))
        if v.new_length is not None:
            length = min(length, v.new_length)
        total += length - old
    return total
