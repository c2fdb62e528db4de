"""The storage server core: immutable shares and leases, with no HTTP in it.

Implements ``veil.services.interfaces.StorageService`` with the behaviour of
Tahoe-LAFS 1.20's server (digest §3.7, §5.5, http_probe.txt): allocation adds
an owner-0 lease at once, ``already-have`` lists every finished share of the
storage index, shares being uploaded or that do not fit are silently left
out, a share becomes readable the moment its last byte is written, and
conflicting rewrites are refused. The HTTP adapter maps each error's
``status`` to the response.

Calls that make leases take the ``account`` the request came through
(``veil.services.storage.accounts``: 0 is anonymous, whose leases carry
Tahoe's own owner numbers); with ``accounting`` set, new shares and growing
mutable slots are refused over the account's quota.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from veil import __version__
from veil.errors import BadRequest, Conflict, NotAllowed, NotFound, ServerFull, Unauthorized
from veil.formats.container import LEASE_DURATION, Lease
from veil.formats.storage_types import TestWrite, TestWriteResult
from veil.formats.wire_batch import EXTENSION, MUTABLE_READ_EXTENSION
from veil.services.interfaces import (
    MAX_MUTABLE_SHARE_SIZE,
    AllocateResult,
    StorageIndex,
    VersionInfo,
    WriteResult,
)
from veil.services.storage.accounts import ANONYMOUS, Accounting, account_of_owner, lease_owner
from veil.services.storage.advisories import Advisories
from veil.services.storage.backend import Backend
from veil.services.storage.mutable_store import MutableStore
from veil.services.storage.reservations import FRESH_SHARE_OF_SPACE, Upload, Uploads

MAX_SHARE_NUMBER = 255
log = logging.getLogger("veil.storage")


# The version answer names veil and the extensions it serves (see wire_batch).
APPLICATION_VERSION = b" ".join(
    (b"veil/" + __version__.encode(), b"+" + EXTENSION, b"+" + MUTABLE_READ_EXTENSION)
)


class OutOfRange(ServerFull):
    """A write past the allocated size (Tahoe answers 500)."""

    status = 500


def _nothing() -> None:
    pass


def _check_lease_secrets(renew: bytes, cancel: bytes) -> None:
    if len(renew) != 32 or len(cancel) != 32:
        raise BadRequest("lease secrets must be 32 bytes")


class StorageServer:
    """One storage server's business logic over a ``Backend``."""

    def __init__(
        self,
        *,
        backend: Backend,
        reserved_space: int = 0,
        readonly: bool = False,
        clock: Callable[[], float] = time.time,
        application_version: bytes = APPLICATION_VERSION,
        nodeid: bytes = bytes(20),
    ) -> None:
        self.backend = backend
        self.mutable = MutableStore(backend, nodeid)  # readonly: immutable only, as Tahoe
        self.reserved_space = reserved_space
        self.readonly = readonly
        self.clock = clock
        self.application_version = application_version
        self._uploads = Uploads()
        self.advisories = Advisories(backend, self.available_space)
        # Lease expiry (veil.services.storage.expiry) decides under this lock and
        # is told of every lease change, to keep its index in step.
        self.lease_lock = threading.RLock()
        # (storage index, the one immutable share just completed, or None: look at all)
        self.lease_observer: Callable[[bytes, int | None], None] | None = None
        self.accounting: Accounting | None = None  # quotas (veil.adapters.node.accounts)

    def _admit(self, account: int, needed: int) -> None:
        """``QuotaExceeded`` unless ``needed`` more bytes fit ``account``'s quota."""
        if self.accounting is None or needed <= 0:
            return
        pending = sum(
            u.allocated_size for u in self._uploads if account_of_owner(u.lease.owner) == account
        )
        self.accounting.admit(account, pending=pending, needed=needed)

    def _leases_changed(self, storage_index: bytes, completed: int | None = None) -> None:
        if self.lease_observer is not None:
            try:
                self.lease_observer(storage_index, completed)
            except Exception as exc:  # the index is rebuilt if lost: never fail a request
                log.warning("the lease index could not be updated: %s", exc)

    # -- space (veil.services.storage.reservations) ------------------------------------

    def available_space(self) -> int:
        """What the version announces: free space beyond ``reserved_space``, less
        what live uploads that are writing still need; 0 when read-only."""
        if self.readonly:
            return 0
        writing, _ = self._uploads.held(self.clock())
        return max(0, self.backend.free_space() - self.reserved_space - writing)

    @staticmethod
    def _allocatable(advertised: int, fresh: int) -> int:
        """The space a new share may take, when unwritten uploads hold ``fresh``:
        they keep at most a fraction of the advertised space from others."""
        return advertised - min(fresh, advertised // FRESH_SHARE_OF_SPACE)

    def get_version(self) -> VersionInfo:
        space = self.available_space()
        return VersionInfo(
            maximum_immutable_share_size=space,
            maximum_mutable_share_size=MAX_MUTABLE_SHARE_SIZE,
            available_space=space,
            application_version=self.application_version,
        )

    def deferred_flush(self) -> AbstractContextManager[Callable[[], None]]:
        deferred = getattr(self.backend, "deferred_flush", None)
        return deferred() if deferred is not None else nullcontext(_nothing)

    # -- uploads -------------------------------------------------------------

    def allocate_buckets(
        self,
        storage_index: StorageIndex,
        share_numbers: frozenset[int],
        allocated_size: int,
        *,
        renew_secret: bytes,
        cancel_secret: bytes,
        upload_secret: bytes,
        account: int = ANONYMOUS,
    ) -> AllocateResult:
        _check_lease_secrets(renew_secret, cancel_secret)
        if not upload_secret:
            raise BadRequest("the upload secret must not be empty")
        if allocated_size < 0 or any(not 0 <= s <= MAX_SHARE_NUMBER for s in share_numbers):
            raise BadRequest("bad share numbers or allocated size")
        self.expire_stale_uploads()
        finished = self.backend.list_shares(storage_index)
        if not self.readonly:  # all the new shares fit the quota, or none is taken
            new = [s for s in share_numbers if s not in finished]
            new = [s for s in new if (storage_index, s) not in self._uploads]
            self._admit(account, len(new) * allocated_size)
        owner = lease_owner(account, 0)
        if finished:
            with self.lease_lock:
                self._renew_or_add(
                    storage_index, finished, renew_secret, cancel_secret, owner=owner
                )
            self._leases_changed(storage_index)
        allocated = set()
        advertised, fresh = self.available_space(), self._uploads.held(self.clock())[1]
        expiry = int(self.clock()) + LEASE_DURATION
        for shnum in sorted(share_numbers):
            if shnum in finished or (storage_index, shnum) in self._uploads:
                continue
            if self.readonly or allocated_size > self._allocatable(advertised, fresh):
                continue
            if not self._uploads.make_room(self.clock()):
                break  # as many uploads open as the server keeps, all of them live
            incoming = self.backend.create_incoming(storage_index, shnum, allocated_size)
            lease = Lease.create(owner, renew_secret, cancel_secret, expiry, hashed=True)
            self._uploads.add(
                (storage_index, shnum),
                Upload(upload_secret, incoming, allocated_size, lease, self.clock()),
            )
            fresh += allocated_size
            allocated.add(shnum)
        return AllocateResult(frozenset(finished), frozenset(allocated))

    def _upload(self, storage_index: StorageIndex, shnum: int, secret: bytes) -> Upload:
        upload = self._uploads.get((storage_index, shnum))
        if upload is None:
            raise NotFound("no upload in progress for this share")
        if not hmac.compare_digest(upload.secret, secret):
            raise Unauthorized("wrong upload secret")
        return upload

    def write_share_chunk(
        self,
        storage_index: StorageIndex,
        share_number: int,
        offset: int,
        data: bytes | memoryview,
        *,
        upload_secret: bytes,
    ) -> WriteResult:
        upload = self._upload(storage_index, share_number, upload_secret)
        end = offset + len(data)
        if offset < 0 or end > upload.allocated_size:
            raise OutOfRange("write beyond the allocated size of the share")
        for b, e in upload.overlaps(offset, end):
            if upload.incoming.read(b, e - b) != data[b - offset : e - offset]:
                raise Conflict("data differs from what was already written")
        upload.incoming.write(offset, data)
        upload.add(offset, end)
        upload.last_activity = self.clock()
        missing = upload.missing()
        if not missing:
            self._uploads.pop((storage_index, share_number))
            with self.lease_lock:
                upload.incoming.finalize([upload.lease])
            self._leases_changed(storage_index, share_number)
        return WriteResult(missing)

    def abort_upload(
        self, storage_index: StorageIndex, share_number: int, *, upload_secret: bytes
    ) -> None:
        if (storage_index, share_number) not in self._uploads:
            if share_number in self.backend.list_shares(storage_index):
                raise NotAllowed("the share is already complete")
            raise NotFound("no upload in progress for this share")
        upload = self._upload(storage_index, share_number, upload_secret)
        self._uploads.pop((storage_index, share_number))
        upload.incoming.abort()

    def expire_stale_uploads(self) -> int:
        """Abort uploads idle for 30 minutes (as Tahoe); return how many."""
        return self._uploads.expire(self.clock())

    # -- reads ---------------------------------------------------------------

    def list_shares(self, storage_index: StorageIndex) -> frozenset[int]:
        return self.backend.list_shares(storage_index)

    def share_length(self, storage_index: StorageIndex, share_number: int) -> int:
        try:
            return self.backend.share_length(storage_index, share_number)
        except KeyError:
            raise NotFound("no such share") from None

    def read_share_chunk(
        self, storage_index: StorageIndex, share_number: int, offset: int, length: int
    ) -> bytes:
        if offset < 0 or length < 0:
            raise BadRequest("bad range")
        total = self.share_length(storage_index, share_number)
        if offset >= total:
            return b""
        return self.backend.read_share(
            storage_index, share_number, offset, min(length, total - offset)
        )

    def advise_corrupt_share(
        self, storage_index: StorageIndex, share_number: int, reason: str
    ) -> None:
        if not reason:
            raise BadRequest("a corruption report needs a reason")
        self.share_length(storage_index, share_number)  # 404 when unknown
        self.advisories.record(storage_index, share_number, reason)

    # -- mutable shares (veil.services.storage.mutable_store) -------------------------

    def mutable_read_test_write(
        self,
        storage_index: StorageIndex,
        vectors: dict[int, TestWrite],
        read_vector: list[tuple[int, int]],
        *,
        write_enabler: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        account: int = ANONYMOUS,
    ) -> TestWriteResult:
        _check_lease_secrets(renew_secret, cancel_secret)
        if len(write_enabler) != 32:
            raise BadRequest("a write enabler is 32 bytes")
        with self.lease_lock:
            result = self.mutable.read_test_write(
                storage_index,
                write_enabler=write_enabler,
                renew_secret=renew_secret,
                cancel_secret=cancel_secret,
                vectors=vectors,
                read_vector=read_vector,
                owner=lease_owner(account, 1),
                admit_growth=lambda growth: self._admit(account, growth),
            )
        if result.success:
            self._leases_changed(storage_index)
        return result

    def mutable_list_shares(self, storage_index: StorageIndex) -> frozenset[int]:
        return self.mutable.list_shares(storage_index)

    def mutable_share_length(self, storage_index: StorageIndex, share_number: int) -> int:
        return self.mutable.data_length(storage_index, share_number)

    def mutable_read(
        self, storage_index: StorageIndex, share_number: int, offset: int, length: int
    ) -> bytes:
        return self.mutable.read(storage_index, share_number, offset, length)

    def mutable_advise_corrupt(
        self, storage_index: StorageIndex, share_number: int, reason: str
    ) -> None:
        if not reason:
            raise BadRequest("a corruption report needs a reason")
        self.mutable.data_length(storage_index, share_number)  # 404 when unknown
        self.advisories.record(storage_index, share_number, reason)

    # -- leases --------------------------------------------------------------

    def add_or_renew_lease(
        self,
        storage_index: StorageIndex,
        *,
        renew_secret: bytes,
        cancel_secret: bytes,
        account: int = ANONYMOUS,
    ) -> None:
        _check_lease_secrets(renew_secret, cancel_secret)
        owner = lease_owner(account, 1)
        with self.lease_lock:
            shares = self.backend.list_shares(storage_index)
            if not shares:
                if not self.mutable.renew_leases(
                    storage_index, renew_secret, cancel_secret, owner=owner
                ):
                    raise NotFound("no shares for this storage index")
            else:
                self._renew_or_add(storage_index, shares, renew_secret, cancel_secret, owner=owner)
        self._leases_changed(storage_index)

    def _renew_or_add(
        self,
        storage_index: StorageIndex,
        shares: frozenset[int],
        renew_secret: bytes,
        cancel_secret: bytes,
        *,
        owner: int,
    ) -> None:
        expiry = int(self.clock()) + LEASE_DURATION
        for shnum in shares:
            leases = self.backend.get_leases(storage_index, shnum)
            for i, lease in enumerate(leases):
                if lease.matches_renew(renew_secret):
                    if lease.expiry < expiry:
                        leases[i] = lease.renewed(expiry)
                        self.backend.set_leases(storage_index, shnum, leases)
                    break
            else:
                hashed = self.backend.uses_hashed_leases(storage_index, shnum)
                leases.append(
                    Lease.create(owner, renew_secret, cancel_secret, expiry, hashed=hashed)
                )
                self.backend.set_leases(storage_index, shnum, leases)
