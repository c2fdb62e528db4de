"""Accounting and quotas on real server cores (memory and disk backends, the
SQLite and memory lease indexes): leases carry the account as Tahoe's
owner_num, figures come from the index, quotas refuse new shares and growing
slots whole, and leases on stored shares are always granted."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.lease_index import (
    MemoryLeaseIndex,
    SQLiteLeaseIndex,
    read_account_usage,
)
from veil.adapters.storage.memory import MemoryBackend
from veil.errors import QuotaExceeded, ServerFull
from veil.formats.storage_types import TestWrite
from veil.formats.wire_batch import BatchUpload
from veil.services.server_failures import summary
from veil.services.storage.accounts import Accounting, AccountLimits, Usage, account_figures
from veil.services.storage.batch import run_upload_batch
from veil.services.storage.expiry import ExpiryPolicy, LeaseExpirer, LeaseIndex
from veil.services.storage.server import StorageServer

ALICE, BOB = 2, 3
WE = b"w" * 32


class Limits:
    """The operator's settings, changeable while the server runs."""

    def __init__(self) -> None:
        self.quotas: dict[int, int | None] = {}

    def __call__(self) -> AccountLimits:
        return AccountLimits({ALICE: "alice", BOB: "bob"}, dict(self.quotas))


def _server(index: LeaseIndex, limits: Limits, backend: object | None = None) -> StorageServer:
    server = StorageServer(backend=backend or MemoryBackend(), nodeid=b"n" * 20)  # type: ignore[arg-type]
    expirer = LeaseExpirer(server.backend, index, ExpiryPolicy(), lock=server.lease_lock)  # type: ignore[arg-type]
    expirer.prepare()
    server.lease_observer = expirer.refresh
    server.accounting = Accounting(index, limits)
    return server


def _store(server: StorageServer, si: bytes, shares: set[int], data: bytes, account: int) -> None:
    secret = os.urandom(32)
    result = server.allocate_buckets(
        si,
        frozenset(shares),
        len(data),
        renew_secret=secret,
        cancel_secret=secret,
        upload_secret=secret,
        account=account,
    )
    for sh in result.allocated:
        assert server.write_share_chunk(si, sh, 0, data, upload_secret=secret).complete


def test_leases_carry_the_account_and_figures_come_from_the_index() -> None:
    index = MemoryLeaseIndex()
    server = _server(index, Limits())
    _store(server, b"a" * 16, {0, 1}, b"x" * 1000, ALICE)
    _store(server, b"b" * 16, {0}, b"y" * 500, 0)
    leases = server.backend.get_leases(b"a" * 16, 0)
    assert [lease.owner for lease in leases] == [ALICE]  # Tahoe's owner_num field
    assert [lease.owner for lease in server.backend.get_leases(b"b" * 16, 0)] == [0]
    assert index.account_usage() == {ALICE: Usage(2, 2000), 0: Usage(1, 500)}
    # bob renews alice's file: it counts toward both; Tahoe's add_lease owner 1 is anonymous
    server.add_or_renew_lease(
        b"a" * 16, renew_secret=b"r" * 32, cancel_secret=b"c" * 32, account=BOB
    )
    server.add_or_renew_lease(b"b" * 16, renew_secret=b"s" * 32, cancel_secret=b"c" * 32)
    assert [lease.owner for lease in server.backend.get_leases(b"b" * 16, 0)] == [0, 1]
    assert index.account_usage() == {ALICE: Usage(2, 2000), BOB: Usage(2, 2000), 0: Usage(1, 500)}
    rows = account_figures(Limits()(), index.account_usage())
    assert [(r["name"], r["shares"], r["bytes"]) for r in rows] == [
        ("anonymous", 1, 500),
        ("alice", 2, 2000),
        ("bob", 2, 2000),
    ]


def test_an_allocation_over_quota_is_refused_whole_and_renewals_still_work() -> None:
    index, limits = MemoryLeaseIndex(), Limits()
    server = _server(index, limits)
    limits.quotas[ALICE] = 2500
    _store(server, b"a" * 16, {0, 1}, b"x" * 1000, ALICE)
    secret = b"u" * 32
    with pytest.raises(
        QuotaExceeded, match=r"over quota: account 'alice' holds 2\.0 kB of a 2\.5 kB"
    ):
        server.allocate_buckets(
            b"c" * 16,
            frozenset({0, 1}),
            1000,
            renew_secret=secret,
            cancel_secret=secret,
            upload_secret=secret,
            account=ALICE,
        )
    assert server.list_shares(b"c" * 16) == frozenset()
    assert server._uploads.get((b"c" * 16, 0)) is None  # nothing half-stored
    # an upload in progress counts: two allocations of 400 cannot both fit in 500
    server.allocate_buckets(
        b"d" * 16,
        frozenset({0}),
        400,
        renew_secret=secret,
        cancel_secret=secret,
        upload_secret=secret,
        account=ALICE,
    )
    with pytest.raises(QuotaExceeded):
        server.allocate_buckets(
            b"e" * 16,
            frozenset({0}),
            400,
            renew_secret=secret,
            cancel_secret=secret,
            upload_secret=secret,
            account=ALICE,
        )
    # a lease on shares already stored is granted, whatever the quota
    limits.quotas[BOB] = 0
    again = server.allocate_buckets(
        b"a" * 16,
        frozenset({0, 1}),
        1000,
        renew_secret=b"b" * 32,
        cancel_secret=b"b" * 32,
        upload_secret=b"b" * 32,
        account=BOB,
    )
    assert again.already_have == {0, 1} and not again.allocated
    assert index.account_usage()[BOB] == Usage(2, 2000)
    # other accounts are not limited by alice's quota
    _store(server, b"f" * 16, {0}, b"z" * 5000, 0)
    assert index.account_usage()[0] == Usage(1, 5000)


def test_anonymous_may_be_refused_new_shares() -> None:
    limits = Limits()
    server = _server(MemoryLeaseIndex(), limits)
    limits.quotas[0] = 0
    with pytest.raises(QuotaExceeded, match="no new shares from anonymous clients"):
        _store(server, b"a" * 16, {0}, b"x", 0)
    _store(server, b"a" * 16, {0}, b"x", ALICE)  # accounts still store
    assert server.list_shares(b"a" * 16) == {0}


def test_mutable_writes_that_grow_a_slot_count_against_the_quota() -> None:
    index, limits = MemoryLeaseIndex(), Limits()
    server = _server(index, limits)
    limits.quotas[ALICE] = 1000
    rs = {"write_enabler": WE, "renew_secret": b"r" * 32, "cancel_secret": b"c" * 32}
    create = {0: TestWrite(writes=((0, b"m" * 800),))}
    assert server.mutable_read_test_write(b"m" * 16, create, [], account=ALICE, **rs).success
    assert [lease.owner for lease in server.mutable._header(b"m" * 16, 0).leases] == [ALICE]
    assert index.account_usage()[ALICE] == Usage(1, 800)
    grow = {0: TestWrite(writes=((800, b"g" * 300),))}
    with pytest.raises(QuotaExceeded, match="alice"):
        server.mutable_read_test_write(b"m" * 16, grow, [], account=ALICE, **rs)
    assert server.mutable_share_length(b"m" * 16, 0) == 800  # nothing written
    rewrite = {0: TestWrite(writes=((0, b"n" * 800),))}  # same size: always allowed
    assert server.mutable_read_test_write(b"m" * 16, rewrite, [], account=ALICE, **rs).success
    shrink = {0: TestWrite(writes=((0, b"s" * 10),), new_length=10)}
    assert server.mutable_read_test_write(b"m" * 16, shrink, [], account=ALICE, **rs).success
    assert index.account_usage()[ALICE] == Usage(1, 10)


def test_a_batch_over_quota_is_refused_with_its_reason_and_stores_nothing() -> None:
    limits = Limits()
    server = _server(MemoryLeaseIndex(), limits)
    limits.quotas[ALICE] = 100
    s = b"s" * 32
    items = [
        BatchUpload(b"a" * 16, 200, s, s, s, {0: b"x" * 200}),
        BatchUpload(b"b" * 16, 50, s, s, s, {0: b"y" * 50}),
    ]
    over, fits = run_upload_batch(server, items, ALICE)
    assert over.status == 507 and over.reason.startswith(QuotaExceeded.MARK)
    assert fits.written == {0}
    assert server.list_shares(b"a" * 16) == frozenset()


def test_the_sqlite_index_keeps_owners_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "lease_index.sqlite"
    backend = DiskBackend(tmp_path / "storage")
    index = SQLiteLeaseIndex(path)
    server = _server(index, Limits(), backend)
    _store(server, b"a" * 16, {0, 1, 2}, b"x" * 100, ALICE)
    _store(server, b"b" * 16, {0}, b"y" * 10, 0)
    assert index.account_usage() == {ALICE: Usage(3, 300), 0: Usage(1, 10)}
    assert read_account_usage(path) == index.account_usage()  # another process's view
    index.close()
    reopened = SQLiteLeaseIndex(path)
    assert not reopened.is_fresh()
    assert reopened.account_usage() == {ALICE: Usage(3, 300), 0: Usage(1, 10)}
    reopened.remove(b"a" * 16, 1, False)
    assert reopened.account_usage()[ALICE] == Usage(2, 200)
    reopened.close()
    # an index from before accounting is rebuilt from the containers
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    assert read_account_usage(path) is None
    old = SQLiteLeaseIndex(path)
    assert old.is_fresh() and old.account_usage() == {}
    _server(old, Limits(), backend)  # prepare() rebuilds
    assert old.account_usage() == {ALICE: Usage(3, 300), 0: Usage(1, 10)}
    old.close()


def test_the_client_says_quota_not_full() -> None:
    quota = QuotaExceeded("server v0-abcdefgh refused: 507 over quota: account 'alice' holds ...")
    line = summary([quota, ServerFull("server v0-b refused: 507 full")], 2)
    assert line.startswith("1 of 2 server(s) refused: server v0-abcdefgh refused: 507 over quota")
    assert "1 of 2 server(s) refused for lack of space" in line
