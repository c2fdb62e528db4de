"""Lease expiry by Tahoe's rules over the SQLite lease index, on real server
cores (disk and memory backends): renewed shares stay, lapsed ones go at a
bounded rate, mutable and immutable rules apply separately, and a lost or
damaged index is rebuilt from the containers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.lease_index import MemoryLeaseIndex, SQLiteLeaseIndex
from veil.adapters.storage.memory import MemoryBackend
from veil.errors import ConfigError
from veil.formats.container import LEASE_DURATION
from veil.formats.storage_types import TestWrite
from veil.services.storage.expiry import (
    ExpiryPolicy,
    LeaseExpirer,
    parse_date,
    parse_duration,
    policy_from_settings,
)
from veil.services.storage.server import StorageServer

DAY = 86400
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_durations_and_dates_as_tahoe_parses_them() -> None:
    assert parse_duration("60 days") == 60 * DAY
    assert parse_duration("1 day") == DAY
    assert parse_duration("3 months") == parse_duration("3mo") == 93 * DAY
    assert parse_duration("1 year") == 365 * DAY
    assert parse_duration("20 seconds") == 20  # veil's extension
    assert parse_date("2026-01-31") == 1769817600
    with pytest.raises(ValueError):
        parse_duration("20")
    with pytest.raises(ConfigError, match="cutoff_date"):
        policy_from_settings(lambda k, d: {"expire.mode": "cutoff-date"}.get(k, d))


def test_the_rules_match_tahoes_expirer() -> None:
    granted = int(T0)
    expiry = granted + LEASE_DURATION
    # age with an override: expired once the lease is older than the override
    p = ExpiryPolicy(True, "age", override=100)
    assert not expiry < p.threshold(T0 + 100)
    assert expiry < p.threshold(T0 + 101)
    # age without an override: Tahoe compares the age with the expiry timestamp,
    # so a lease never expires in practice (veil does the same)
    assert not expiry < ExpiryPolicy(True, "age").threshold(T0 + 10 * 365 * DAY)
    # cutoff-date: expired when granted before the cutoff
    cut = ExpiryPolicy(True, "cutoff-date", cutoff=granted + 1)
    assert expiry < cut.threshold(T0)
    assert not expiry < ExpiryPolicy(True, "cutoff-date", cutoff=granted).threshold(T0)


def _put(server: StorageServer, si: bytes, shnum: int, secret: bytes) -> None:
    data = os.urandom(1000)
    server.allocate_buckets(
        si, frozenset({shnum}), len(data), renew_secret=secret, cancel_secret=secret,
        upload_secret=b"u",
    )  # fmt: skip
    server.write_share_chunk(si, shnum, 0, data, upload_secret=b"u")


@dataclass
class Grid:
    backend: DiskBackend | MemoryBackend
    server: StorageServer
    expirer: LeaseExpirer
    clock: Clock
    sleeps: list[float]


def _grid(root: Path | None, policy: ExpiryPolicy) -> Grid:
    clock = Clock()
    backend = DiskBackend(root) if root else MemoryBackend()
    server = StorageServer(backend=backend, clock=clock)
    index = SQLiteLeaseIndex(root / "lease_index.sqlite") if root else MemoryLeaseIndex()
    sleeps: list[float] = []
    expirer = LeaseExpirer(
        backend, index, policy, lock=server.lease_lock, clock=clock, sleep=sleeps.append
    )
    server.lease_observer = expirer.refresh
    return Grid(backend, server, expirer, clock, sleeps)


@pytest.mark.parametrize("on_disk", [True, False])
def test_renewed_shares_stay_and_lapsed_ones_go(tmp_path: Path, on_disk: bool) -> None:
    g = _grid(tmp_path if on_disk else None, ExpiryPolicy(True, "age", 100))
    server, expirer, clock = g.server, g.expirer, g.clock
    expirer.run_pass()
    for i in range(5):
        _put(server, bytes([i]) * 16, 0, bytes([i]) * 32)
    assert expirer.index.totals().shares == 5
    clock.now += 60
    server.add_or_renew_lease(bytes([0]) * 16, renew_secret=b"\0" * 32, cancel_secret=b"\0" * 32)
    clock.now += 50  # share 0 renewed 50 s ago, the others 110 s ago
    stats = expirer.run_pass()
    assert stats.shares_deleted == 4 and stats.bytes_freed == 4 * 1000
    assert g.backend.storage_indexes() == [bytes([0]) * 16]
    assert g.sleeps == [1 / 100] * 4
    assert expirer.figures()["shares-held"] == 1
    if on_disk:
        assert not (tmp_path / "shares" / "ae").exists()  # empty directories removed
    clock.now += 60
    expirer.run_pass()
    assert g.backend.storage_indexes() == []


def test_disabled_expiry_deletes_nothing_and_kinds_are_separate(tmp_path: Path) -> None:
    g = _grid(tmp_path, ExpiryPolicy(False, "age", 10))
    server, expirer, clock = g.server, g.expirer, g.clock
    _put(server, b"i" * 16, 0, b"r" * 32)
    server.mutable_read_test_write(
        b"m" * 16, {0: TestWrite((), ((0, b"mutable data"),))}, [],
        write_enabler=b"w" * 32, renew_secret=b"r" * 32, cancel_secret=b"c" * 32,
    )  # fmt: skip
    clock.now += 10 * LEASE_DURATION
    assert expirer.run_pass().shares_deleted == 0
    expirer.policy = ExpiryPolicy(True, "age", 10, mutable=False)
    assert expirer.run_pass().shares_deleted == 1
    assert server.mutable_list_shares(b"m" * 16) == frozenset({0})
    assert server.list_shares(b"i" * 16) == frozenset()


def test_a_lost_or_damaged_index_is_rebuilt_from_the_containers(tmp_path: Path) -> None:
    g = _grid(tmp_path, ExpiryPolicy(True, "age", 100))
    server, expirer, clock = g.server, g.expirer, g.clock
    for i in range(3):
        _put(server, bytes([i + 1]) * 16, i, bytes([i]) * 32)
    before = expirer.index.totals()
    db = tmp_path / "lease_index.sqlite"
    assert isinstance(expirer.index, SQLiteLeaseIndex)
    expirer.index.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    index = SQLiteLeaseIndex(db)
    assert index.is_fresh() and index.totals().shares == 0
    again = LeaseExpirer(g.backend, index, expirer.policy, lock=server.lease_lock, clock=clock)
    again.run_pass()
    assert index.totals() == before and not index.is_fresh()
    clock.now += 200
    assert again.run_pass().shares_deleted == 3


def test_a_completed_share_is_indexed_as_a_full_scan_would_index_it(tmp_path: Path) -> None:
    g = _grid(tmp_path, ExpiryPolicy(True, "age", 100))
    si = b"s" * 16
    for shnum in (0, 3):  # each completion re-indexes only its own share
        _put(g.server, si, shnum, b"r" * 32)
    quick = sorted(g.expirer.index.shares_of(si), key=lambda s: s.shnum)
    assert [s.shnum for s in quick] == [0, 3] and all(s.size == 1000 for s in quick)
    g.expirer.refresh(si)  # the full scan of the storage index finds the same rows
    assert sorted(g.expirer.index.shares_of(si), key=lambda s: s.shnum) == quick
    # the shares were written in one flat incoming directory, left empty
    assert list((tmp_path / "shares" / "incoming").iterdir()) == []
    # a completion whose share is gone meanwhile falls back to the full scan
    g.backend.delete_share(si, 3)
    g.expirer.refresh(si, 3)
    assert [s.shnum for s in g.expirer.index.shares_of(si)] == [0]
