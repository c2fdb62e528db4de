"""What one client can make a storage server core hold: reservations made
without writing (item 18), corruption advisories (19), unreadable containers
on disk (20), and what ``readonly`` refuses (26)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.memory import MemoryBackend
from veil.errors import NotFound
from veil.formats import base32
from veil.formats.mutable_container import MAGIC_V2
from veil.formats.storage_types import TestWrite
from veil.services.storage import reservations
from veil.services.storage.advisories import ADVISORY_BUDGET, MAX_PER_SHARE, MAX_REASON
from veil.services.storage.server import StorageServer

R, C, U = b"r" * 32, b"c" * 32, b"upload-secret"
WE = b"w" * 32
CAPACITY = 10_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def si(n: int) -> bytes:
    return n.to_bytes(16, "big")


def allocate(s: StorageServer, index: bytes, shares: set[int], size: int) -> frozenset[int]:
    return s.allocate_buckets(
        index, frozenset(shares), size, renew_secret=R, cancel_secret=C, upload_secret=U
    ).allocated


# -- item 18: reservations ----------------------------------------------------


def test_an_allocation_without_writes_neither_empties_the_server_nor_lasts() -> None:
    clock = Clock()
    s = StorageServer(backend=MemoryBackend(CAPACITY), clock=clock)
    free = s.get_version().available_space
    # One client asks for everything, in one share or spread over 256.
    assert allocate(s, si(1), {0}, free) == {0}
    assert allocate(s, si(2), set(range(256)), free // 256) == set(range(256))
    assert s.get_version().available_space == free  # what is not written is not announced
    # Unwritten reservations keep at most half of the space from the others.
    assert allocate(s, si(3), {0}, free // 2) == {0}
    assert allocate(s, si(4), {0}, free // 2 + 1) == set()
    # ...and only for a minute: then the whole space can be allocated again.
    clock.now += reservations.RESERVATION_IDLE + 1
    assert allocate(s, si(5), {0}, free) == {0}


def test_a_writing_upload_holds_what_it_still_needs_until_it_idles() -> None:
    clock = Clock()
    s = StorageServer(backend=MemoryBackend(CAPACITY), clock=clock)
    free = s.get_version().available_space
    allocate(s, si(1), {0}, 1000)
    s.write_share_chunk(si(1), 0, 0, b"x" * 400, upload_secret=U)
    assert s.get_version().available_space == free - 600
    clock.now += reservations.RESERVATION_IDLE + 1
    assert s.get_version().available_space == free  # idle: released
    # the upload itself survives (Tahoe's 30 minutes) and may still finish
    assert s.write_share_chunk(si(1), 0, 400, b"x" * 600, upload_secret=U).complete
    assert s.read_share_chunk(si(1), 0, 0, 2000) == b"x" * 1000


def test_open_uploads_are_bounded_and_idle_ones_give_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reservations, "MAX_UPLOADS", 20)
    clock = Clock()
    s = StorageServer(backend=MemoryBackend(CAPACITY), clock=clock)
    assert len(allocate(s, si(1), set(range(50)), 10)) == 20
    assert allocate(s, si(2), {0}, 10) == set()  # all live: no room
    clock.now += reservations.RESERVATION_IDLE + 1
    assert allocate(s, si(2), {0, 1}, 10) == {0, 1}  # idle ones are aborted for them
    with pytest.raises(NotFound):
        s.write_share_chunk(si(1), 0, 0, b"x", upload_secret=U)


# -- item 19: advisories ------------------------------------------------------


def test_300_advisories_write_a_bounded_amount(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = StorageServer(backend=DiskBackend(tmp_path / "st"))
    for n in range(3):
        allocate(s, si(n), {0}, 4)
        s.write_share_chunk(si(n), 0, 0, b"data", upload_secret=U)
    caplog.set_level(logging.WARNING)
    for i in range(300):
        s.advise_corrupt_share(si(i % 3), 0, "x" * 32765)
    files = list((tmp_path / "st" / "corruption-advisories").iterdir())
    written = sum(f.stat().st_size for f in files)
    assert written <= 3 * MAX_PER_SHARE * (MAX_REASON + 128)
    assert s.advisories.dropped == 300 - 3 * MAX_PER_SHARE
    assert len([r for r in caplog.records if "dropped" in r.message]) == 1
    assert all(len(r.getMessage()) < 300 for r in caplog.records)


def test_advisories_stop_at_the_budget_and_respect_reserved_space(tmp_path: Path) -> None:
    backend = DiskBackend(tmp_path / "st")
    s = StorageServer(backend=backend)
    for n in range(200):
        allocate(s, si(n), {0}, 1)
        s.write_share_chunk(si(n), 0, 0, b"d", upload_secret=U)
    for n in range(200):
        s.advise_corrupt_share(si(n), 0, "y" * MAX_REASON)
    assert backend.corruption_advisory_bytes() <= ADVISORY_BUDGET
    assert StorageServer(backend=backend).advisories.used >= backend.corruption_advisory_bytes()
    # far more reserved than the disk has: other processes' files come and go meanwhile
    full = StorageServer(backend=backend, reserved_space=backend.free_space() + 10**15)
    before = backend.corruption_advisory_bytes()
    full.advisories.used = 0
    full.mutable_read_test_write(
        si(999),
        {0: TestWrite(((0, 1, b""),), ((0, b"m"),))},
        [],
        write_enabler=WE,
        renew_secret=R,
        cancel_secret=C,
    )
    full.mutable_advise_corrupt(si(999), 0, "no room")
    assert backend.corruption_advisory_bytes() == before  # nothing beyond reserved_space


# -- item 20: unreadable containers --------------------------------------------


def _share_file(root: Path, index: bytes, shnum: int) -> Path:
    name = base32.b2a(index)
    return root / "shares" / name[:2] / name / str(shnum)


@pytest.mark.parametrize(
    "content",
    [
        b"garbage header that is not a container",
        b"\x00\x00\x00",  # truncated inside the header
        bytes.fromhex("00000002000000050000ffff") + b"short",  # leases beyond the file
        b"",
        MAGIC_V2 + b"truncated mutable header",
    ],
)
def test_an_unreadable_container_is_absent_and_logged_once(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    s = StorageServer(backend=DiskBackend(tmp_path / "st"))
    allocate(s, si(1), {0}, 4)
    s.write_share_chunk(si(1), 0, 0, b"good", upload_secret=U)
    bad = _share_file(tmp_path / "st", si(1), 7)
    bad.write_bytes(content)
    caplog.set_level(logging.ERROR)
    for _ in range(3):
        assert s.list_shares(si(1)) == {0}
        assert s.mutable_list_shares(si(1)) == set()
        with pytest.raises(NotFound):
            s.read_share_chunk(si(1), 7, 0, 10)
        with pytest.raises(NotFound):
            s.mutable_read(si(1), 7, 0, 10)
        assert s.read_share_chunk(si(1), 0, 0, 10) == b"good"
    s.add_or_renew_lease(si(1), renew_secret=b"n" * 32, cancel_secret=C)
    assert len([r for r in caplog.records if "unreadable" in r.message]) == 1
    # an upload of that share replaces the broken file
    assert allocate(s, si(1), {7}, 3) == {7}
    s.write_share_chunk(si(1), 7, 0, b"new", upload_secret=U)
    assert s.read_share_chunk(si(1), 7, 0, 10) == b"new"


def test_an_unreadable_mutable_container_is_replaced_by_a_write(tmp_path: Path) -> None:
    s = StorageServer(backend=DiskBackend(tmp_path / "st"))
    _share_file(tmp_path / "st", si(2), 3).parent.mkdir(parents=True)
    _share_file(tmp_path / "st", si(2), 3).write_bytes(MAGIC_V2[:-4] + b"\xff" * 10 + b"junk" * 500)
    result = s.mutable_read_test_write(
        si(2),
        {3: TestWrite(((0, 1, b""),), ((0, b"fresh"),))},
        [(0, 5)],
        write_enabler=WE,
        renew_secret=R,
        cancel_secret=C,
    )
    assert result.success and result.data == {}
    assert s.mutable_read(si(2), 3, 0, 100) == b"fresh"
    assert _share_file(tmp_path / "st", si(2), 3).stat().st_size < 600


# -- item 26: readonly ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "disk"])
def test_readonly_refuses_immutable_shares_only(tmp_path: Path, backend: str) -> None:
    store = MemoryBackend() if backend == "memory" else DiskBackend(tmp_path / "st")
    s = StorageServer(backend=store, readonly=True)
    assert s.get_version().available_space == 0
    assert allocate(s, si(1), {0, 1}, 10) == set()
    create = {0: TestWrite(((0, 1, b""),), ((0, b"mutable data"),))}
    r = s.mutable_read_test_write(
        si(2), create, [], write_enabler=WE, renew_secret=R, cancel_secret=C
    )
    assert r.success
    update = {0: TestWrite(((0, 7, b"mutable"),), ((0, b"changed"),))}
    r = s.mutable_read_test_write(
        si(2), update, [], write_enabler=WE, renew_secret=R, cancel_secret=C
    )
    assert r.success and s.mutable_read(si(2), 0, 0, 100) == b"changed data"
