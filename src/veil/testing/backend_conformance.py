"""The ``Backend`` conformance suite: one set of checks for every backend.

Each check takes ``open_backend``, a callable that returns a backend over the
same storage each time it is called: a second call is a server restart
(``MemoryBackend`` factories return the same object, which is what surviving
means for it). tests/unit/test_backend_conformance.py runs the checks on the
disk and memory backends, tests/s3/test_s3_conformance.py on S3 (SeaweedFS).
Checks use fresh random storage indexes, so backends may be shared.

``CHECKS`` lists them; ``LARGE_SHARE`` is the size of the share that spans
several S3 parts (the S3 suite opens its backend with 5 MiB parts).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from veil.formats.container import LEASE_DURATION, Lease
from veil.formats.mutable_container import DATA_OFFSET, MAGIC_PREFIX
from veil.formats.storage_types import TestWrite
from veil.services.storage.backend import Backend
from veil.services.storage.expiry import ExpiringBackend
from veil.services.storage.server import StorageServer

OpenBackend = Callable[[], Backend]
R, C, U = b"r" * 32, b"c" * 32, b"upload-secret"
WE = b"w" * 32
LARGE_SHARE = 12 * 1024 * 1024 + 12345


def _si() -> bytes:
    return os.urandom(16)


def _lease(owner: int = 0, expiry: int = 2_000_000_000) -> Lease:
    return Lease.create(owner, os.urandom(32), os.urandom(32), expiry, hashed=True)


def _missing(call: Callable[[], object]) -> bool:
    try:
        call()
    except KeyError:
        return True
    return False


def check_incoming_is_invisible_until_finalized(open_backend: OpenBackend) -> None:
    b, si = open_backend(), _si()
    incoming = b.create_incoming(si, 3, 20)
    incoming.write(0, b"0123456789")
    assert incoming.read(2, 5) == b"23456"
    assert b.list_shares(si) == frozenset()
    assert _missing(lambda: b.share_length(si, 3))
    assert _missing(lambda: b.read_share(si, 3, 0, 5))
    incoming.write(10, memoryview(b"abcdefghij"))
    lease = _lease()
    incoming.finalize([lease])
    assert b.list_shares(si) == {3}
    assert b.share_length(si, 3) == 20
    assert b.read_share(si, 3, 0, 20) == b"0123456789abcdefghij"
    assert b.read_share(si, 3, 8, 4) == b"89ab"
    assert b.read_share(si, 3, 15, 100) == b"fghij"  # clipped at the end
    assert b.get_leases(si, 3) == [lease]
    assert b.list_slots(si) == frozenset()  # an immutable share is not a slot


def check_abort_leaves_nothing(open_backend: OpenBackend) -> None:
    b, si = open_backend(), _si()
    incoming = b.create_incoming(si, 0, 10)
    incoming.write(0, b"12345")
    incoming.abort()
    assert b.list_shares(si) == frozenset()
    again = b.create_incoming(si, 0, 10)  # the same share can be uploaded anew
    again.write(0, b"abcdefghij")
    again.finalize([_lease()])
    assert b.read_share(si, 0, 0, 10) == b"abcdefghij"


def check_out_of_order_rewrites(open_backend: OpenBackend) -> None:
    """Chunks in any order, some written twice, and a share spanning S3 parts."""
    b, si = open_backend(), _si()
    data = os.urandom(LARGE_SHARE)
    incoming = b.create_incoming(si, 7, len(data))
    step = 1024 * 1024 + 17
    cuts = list(range(0, len(data), step))
    for begin in [*cuts[1::2], *cuts[0::2], cuts[0]]:  # odd, then even, one twice
        incoming.write(begin, data[begin : begin + step])
    assert incoming.read(step - 3, 6) == data[step - 3 : step + 3]
    assert b.list_shares(si) == frozenset()
    incoming.finalize([_lease()])
    assert b.share_length(si, 7) == len(data)
    assert b.read_share(si, 7, 0, len(data)) == data
    assert b.read_share(si, 7, 5_000_000, 1_000_000) == data[5_000_000:6_000_000]
    backwards = b.create_incoming(si, 8, len(data))
    for begin in reversed(cuts):  # no byte from the start until the very last chunk
        backwards.write(begin, data[begin : begin + step])
    backwards.finalize([_lease()])
    assert open_backend().read_share(si, 8, 0, len(data)) == data


def check_leases_persist(open_backend: OpenBackend) -> None:
    b, si = open_backend(), _si()
    incoming = b.create_incoming(si, 1, 4)
    incoming.write(0, b"data")
    first, second = _lease(0), _lease(1, 2_100_000_000)
    incoming.finalize([first])
    b.set_leases(si, 1, [first, second])
    assert b.get_leases(si, 1) == [first, second]
    assert b.uses_hashed_leases(si, 1)
    restarted = open_backend()
    assert restarted.get_leases(si, 1) == [first, second]
    restarted.set_leases(si, 1, [second])
    assert open_backend().get_leases(si, 1) == [second]
    assert open_backend().read_share(si, 1, 0, 4) == b"data"
    assert _missing(lambda: restarted.get_leases(si, 2))


def check_unfinished_upload_is_gone_after_restart(open_backend: OpenBackend) -> None:
    b, si = open_backend(), _si()
    incoming = b.create_incoming(si, 0, 10)
    incoming.write(0, b"12345")
    restarted = open_backend()
    assert restarted.list_shares(si) == frozenset()
    assert _missing(lambda: restarted.read_share(si, 0, 0, 5))
    fresh = restarted.create_incoming(si, 0, 10)
    fresh.write(0, b"abcdefghij")
    fresh.finalize([_lease()])
    incoming.abort()  # the stopped server's handle harms nothing
    assert open_backend().read_share(si, 0, 0, 10) == b"abcdefghij"


def check_slots(open_backend: OpenBackend) -> None:
    b, si = open_backend(), _si()
    m, n = MAGIC_PREFIX, len(MAGIC_PREFIX)  # the disk backend tells slots by their magic
    assert _missing(lambda: b.read_slot(si, 0, 0, 10))
    b.write_slot(si, 0, [(0, m + b"hello"), (n + 10, b"world")])  # a hole reads as zeros
    assert b.list_slots(si) == {0}
    assert b.list_shares(si) == frozenset()  # a slot is not an immutable share
    assert b.read_slot(si, 0, 0, 100) == m + b"hello" + bytes(5) + b"world"
    assert b.read_slot(si, 0, n + 12, 2) == b"rl"
    assert b.read_slot(si, 0, n + 50, 10) == b""  # a missing range reads as fewer bytes
    b.write_slot(si, 0, [(n, b"J")])
    b.write_slot(si, 2, [(0, m + b"two")])
    restarted = open_backend()
    assert restarted.list_slots(si) == {0, 2}
    assert restarted.read_slot(si, 0, n, 5) == b"Jello"
    restarted.delete_slot(si, 0)
    restarted.delete_slot(si, 9)  # nothing there: no error
    assert open_backend().list_slots(si) == {2}


def check_mutable_test_and_write_survives_restart(open_backend: OpenBackend) -> None:
    si = _si()
    server = StorageServer(backend=open_backend(), nodeid=b"n" * 20)
    create = {
        0: TestWrite(((0, 1, b""),), ((0, b"version one"),)),
        1: TestWrite(writes=((0, b"x"),)),
    }
    secrets: dict[str, Any] = {"write_enabler": WE, "renew_secret": R, "cancel_secret": C}
    assert server.mutable_read_test_write(si, create, [], **secrets).success
    stale = {0: TestWrite(((0, 7, b"version"),), ((8, b"two"),))}
    assert server.mutable_read_test_write(si, stale, [(0, 11)], **secrets).success
    failed = server.mutable_read_test_write(si, {0: TestWrite(((0, 3, b"no!"),))}, [], **secrets)
    assert not failed.success
    again = StorageServer(backend=open_backend(), nodeid=b"n" * 20)
    assert again.mutable_list_shares(si) == {0, 1}
    assert again.mutable_read(si, 0, 0, 100) == b"version two"
    raw = open_backend().read_slot(si, 0, 0, DATA_OFFSET)
    assert len(raw) == DATA_OFFSET and raw.startswith(MAGIC_PREFIX)  # Tahoe's container


def check_server_upload_and_leases(open_backend: OpenBackend) -> None:
    """The storage core's whole immutable path on this backend."""
    now = [1_700_000_000.0]
    server = StorageServer(backend=open_backend(), clock=lambda: now[0])
    si, data = _si(), os.urandom(300_000)
    got = server.allocate_buckets(
        si, frozenset({0, 1}), len(data), renew_secret=R, cancel_secret=C, upload_secret=U
    )
    assert got.allocated == {0, 1}
    for shnum in (0, 1):
        for begin in range(0, len(data), 65536):
            server.write_share_chunk(si, shnum, begin, data[begin : begin + 65536], upload_secret=U)
    assert server.list_shares(si) == {0, 1}
    assert server.read_share_chunk(si, 1, 1000, 2000) == data[1000:3000]
    now[0] += 1000
    server.add_or_renew_lease(si, renew_secret=b"n" * 32, cancel_secret=C)
    leases = open_backend().get_leases(si, 0)
    assert [x.owner for x in leases] == [0, 1]
    assert leases[1].expiry == int(now[0]) + LEASE_DURATION
    server.advise_corrupt_share(si, 0, "block 3 hash mismatch")
    assert server.backend.corruption_advisory_bytes() > 0


def check_delete_and_list_everything(open_backend: OpenBackend) -> None:
    """What lease expiry needs: every storage index, and deleting a share."""
    b, si, slot_si = open_backend(), _si(), _si()
    for shnum in (0, 1):
        incoming = b.create_incoming(si, shnum, 3)
        incoming.write(0, b"abc")
        incoming.finalize([_lease()])
    b.write_slot(slot_si, 4, [(0, MAGIC_PREFIX + b"slot")])
    expiring = cast(ExpiringBackend, b)  # every backend here has the two calls
    assert {si, slot_si} <= set(expiring.storage_indexes())
    expiring.delete_share(si, 0)
    restarted = open_backend()
    assert restarted.list_shares(si) == {1}
    assert _missing(lambda: restarted.read_share(si, 0, 0, 3))
    assert _missing(lambda: restarted.get_leases(si, 0))
    fresh = restarted.create_incoming(si, 0, 3)  # a deleted share can come back
    lease = _lease(5)
    fresh.write(0, b"xyz")
    fresh.finalize([lease])
    assert open_backend().get_leases(si, 0) == [lease]


def check_space_is_reported(open_backend: OpenBackend) -> None:
    assert open_backend().free_space() > 0


CHECKS: list[Callable[[OpenBackend], None]] = [
    check_incoming_is_invisible_until_finalized,
    check_abort_leaves_nothing,
    check_out_of_order_rewrites,
    check_leases_persist,
    check_unfinished_upload_is_gone_after_restart,
    check_slots,
    check_mutable_test_and_write_survives_restart,
    check_server_upload_and_leases,
    check_delete_and_list_everything,
    check_space_is_reported,
]
