"""The latest record on an in-process grid: every backup adds one to the counter;
a server that serves an older record than the others is outvoted (seqnum); a
restore takes the newer of blob and grid and says so; the document's round trip
keeps every field and no repr shows a cap or secret."""

from __future__ import annotations

import asyncio

from veil.formats.params import EncodingParameters
from veil.formats.recovery_document import (
    GridSettings,
    LatestRecord,
    RecoveryDocument,
    Task,
    WriteSecrets,
)
from veil.services.mutable.files import MutableFiles
from veil.services.recovery.latest import newest, read_latest, record_backup
from veil.testing.local_grid import local_grid

PARAMS = EncodingParameters(2, 3, 4)


def task(name: str, snap: str) -> Task:
    return Task(f"~/{name}", f"backups:{name}", ["*.tmp"], False, snap, "2026-12-01_00:00:00Z")


def test_backups_update_the_record_and_an_old_server_is_outvoted() -> None:
    async def go() -> None:
        broker, servers = local_grid(4)
        files = MutableFiles(broker, PARAMS, lease_secret=b"s" * 32)
        wcap, first = await record_backup(files, None, task("docs", "URI:DIR2-CHK:a"), now=1.0)
        assert first.counter == 1
        from veil.formats import mutable_caps as mc

        cap = mc.parse_any(wcap)
        assert isinstance(cap, mc.SSKWriteCap)
        rcap = cap.read_cap().to_string()
        servers[0].fail = True  # down during the next backups: keeps record #1
        await record_backup(files, wcap, task("mail", "URI:DIR2-CHK:b"), now=2.0)
        _, third = await record_backup(files, wcap, task("docs", "URI:DIR2-CHK:c"), now=3.0)
        servers[0].fail = False
        assert third.counter == 3
        assert [(t.local, t.snapshot) for t in third.tasks] == [
            ("~/mail", "URI:DIR2-CHK:b"),
            ("~/docs", "URI:DIR2-CHK:c"),
        ]
        for _ in range(3):  # the stale server answers too, and loses
            got = await read_latest(files, rcap)
            assert got.counter == 3 and got == third
        servers[1].fail = True  # the stale server and two fresh ones answer
        assert (await read_latest(files, rcap)).counter == 3

    asyncio.run(go())


def test_two_backups_recorded_at_once_both_stay_in_the_record() -> None:
    async def go() -> None:
        broker, _ = local_grid(4)
        files = MutableFiles(broker, PARAMS, lease_secret=b"s" * 32)
        wcap, _ = await record_backup(files, None, task("docs", "URI:DIR2-CHK:a"), now=1.0)
        await asyncio.gather(
            record_backup(files, wcap, task("mail", "URI:DIR2-CHK:b"), now=2.0),
            record_backup(files, wcap, task("pics", "URI:DIR2-CHK:c"), now=2.0),
        )
        got = await read_latest(files, wcap)
        assert got.counter == 3  # each change made on the other's: none lost
        assert sorted(t.local for t in got.tasks) == ["~/docs", "~/mail", "~/pics"]

    asyncio.run(go())


def test_newest_of_blob_and_grid() -> None:
    old, new = LatestRecord(2, 10.0, []), LatestRecord(5, 20.0, [])
    record, note = newest(old, new)
    assert record is new and note is not None and "blob is older" in note
    record, note = newest(new, old)
    assert record is new and note is not None and "older than the blob" in note
    assert newest(new, new) == (new, None)
    assert newest(old, None)[0] is old


def test_document_round_trip_and_reprs() -> None:
    doc = RecoveryDocument(
        1.5,
        GridSettings(
            {"default": "pb://x@tor:abc.onion:1/s"},
            {"v0-a": {"k": 1}},
            (2, 3, 4),
            True,
            {"socks.port": "tcp:127.0.0.1:9050"},
            {"tcp": "tor"},
        ),
        {"backups": "URI:DIR2-RO:aaaa:bbbb"},
        "URI:SSK-RO:cccc:dddd",
        LatestRecord(4, 2.5, [task("docs", "URI:DIR2-CHK:eeee:ffff:2:4:100")]),
        WriteSecrets("convsecret", "leasesecret", "URI:SSK:gggg:hhhh"),
    )
    back = RecoveryDocument.from_body(doc.to_body())
    assert back == doc
    shown = repr(back)
    for secret in ("aaaa", "cccc", "eeee", "convsecret", "leasesecret", "gggg", "onion"):
        assert secret not in shown


def test_check_finds_a_snapshot_no_longer_whole() -> None:
    """``check_record`` lists shares on every server: whole while k shares are
    listed, missing when too few servers hold the file's shares."""
    from veil.formats import mutable_caps as mc
    from veil.services.directories import Directories, entry_for
    from veil.services.immutable.downloader import Downloader
    from veil.services.immutable.uploader import Uploader
    from veil.services.recovery.check import check_record

    async def go() -> None:
        broker, servers = local_grid(4)
        up = Uploader(broker, PARAMS, lease_secret=b"s" * 32, convergence_secret=b"c" * 32)
        dirs = Directories(MutableFiles(broker, PARAMS, lease_secret=b"s" * 32), Downloader(broker))
        big = await up.upload_bytes(b"x" * 100_000)
        snap = await dirs.create_immutable({"f": entry_for(big.cap.to_string())}, up)
        assert isinstance(snap, mc.DirCap)
        record = LatestRecord(1, 1.0, [task("docs", snap.to_string())])
        (result,) = await check_record(dirs, broker, record)
        assert result.whole and result.files == 1 and result.directories == 1
        for s in servers[:3]:  # N=4 shares on 4 servers: one left, k=2 needed
            s.fail = True
        (result,) = await check_record(dirs, broker, record)
        assert not result.whole

    asyncio.run(go())
