"""The pure parts of backups: snapshot names, metadata, directory hashes,
excludes, restic's retention rules, restore decisions; and the backup
database in Tahoe 1.20's schema."""

from __future__ import annotations

import datetime
import io
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from veil.adapters.node.backupdb import BackupDB
from veil.errors import ConfigError, UsageError
from veil.services.backup import restore_plan as rp
from veil.services.backup.metadata import (
    VCS_PATTERNS,
    Excluder,
    archive_name,
    archive_time,
    dirhash,
    entry_metadata,
    recorded,
)
from veil.services.backup.retention import Policy, choose, parse_duration

CAP = "URI:CHK:aaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:2:4:100"


def test_archive_names_are_tahoes() -> None:
    # Tahoe: time_format.iso_utc(int(time.time()), sep="_") + "Z"
    assert archive_name(1_700_000_000.9) == "2023-11-14_22:13:20Z"
    assert archive_time("2023-11-14_22:13:20Z") == 1_700_000_000
    assert archive_time("2023-11-14T22:13:20.5Z") == 1_700_000_000.5
    assert archive_time("Latest") is None and archive_time("2023-13-40_00:00:00Z") is None


def test_metadata_has_tahoes_keys_and_veils(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    os.chmod(f, 0o4755)
    st = f.lstat()
    meta = entry_metadata(st, user="root", group="root")
    assert {"ctime", "mtime", "st_mode", "st_ino", "st_dev", "st_uid", "st_gid"} <= set(meta)
    rec = recorded(meta, is_dir=False)
    assert (rec.kind, rec.mode, rec.size, rec.mtime_ns) == ("file", 0o4755, 3, st.st_mtime_ns)
    tahoe_only = {k: v for k, v in meta.items() if k != "veil"}
    rec = recorded(tahoe_only, is_dir=False)  # a snapshot tahoe backup made
    assert rec.mode == 0o4755 and rec.uid == st.st_uid and rec.kind == "file"
    assert recorded({"veil": {"kind": "symlink", "target": "x"}}, is_dir=False).target == "x"


def test_dirhash_changes_with_metadata_not_order() -> None:
    a = {"x": (CAP, {"mtime": 1}), "y": (CAP, {"mtime": 2})}
    b = dict(reversed(list(a.items())))
    assert dirhash(a) == dirhash(b)
    assert dirhash(a) != dirhash({**a, "x": (CAP, {"mtime": 3})})


def test_excludes_as_tahoe() -> None:
    ex = Excluder(["*.tmp", " cache ", "", *VCS_PATTERNS])
    assert ex.excluded("a.tmp") and ex.excluded("cache") and ex.excluded(".git")
    assert not ex.excluded("a.tmpx") and not ex.excluded("git")


def _t(y: int, mo: int, d: int, h: int = 12) -> float:
    return datetime.datetime(y, mo, d, h, tzinfo=datetime.UTC).timestamp()


def test_retention_as_restic() -> None:
    snaps = [(f"s{d:02d}-{h}", _t(2026, 1, d, h)) for d in range(1, 29) for h in (9, 18)]
    keep = choose(snaps, Policy(last=3))
    assert sorted(keep) == ["s27-18", "s28-18", "s28-9"]
    keep = choose(snaps, Policy(daily=3))
    assert sorted(keep) == ["s26-18", "s27-18", "s28-18"]  # the newest of each day
    keep = choose(snaps, Policy(weekly=2))
    assert sorted(keep) == ["s25-18", "s28-18"]  # ISO weeks: Sun 25 Jan ends week 4
    keep = choose(snaps, Policy(monthly=5, yearly=1))
    assert keep == {"s28-18": ["monthly", "yearly"]}
    keep = choose(snaps, Policy(within=parse_duration("1d")))
    assert sorted(keep) == ["s28-18", "s28-9"]  # exactly 1 day older is not within
    keep = choose(snaps, Policy(hourly=2, last=1))
    assert keep == {"s28-18": ["last", "hourly"], "s28-9": ["hourly"]}
    assert choose(snaps, Policy()) == {}
    assert parse_duration("1y2m3d4h") == ((365 + 60 + 3) * 24 + 4) * 3600
    with pytest.raises(UsageError):
        parse_duration("3 weeks")


def test_restore_decisions() -> None:
    rec = recorded(
        {"veil": {"kind": "file", "mode": 0o640, "mtime_ns": 5, "uid": 7, "gid": 7}},
        is_dir=False,
    )
    same = rp.Local(stat.S_IFREG | 0o640, 10, 5, 7, 7)
    assert rp.action(rec, 10, None, as_root=False) == rp.WRITE
    assert rp.action(rec, 10, same, as_root=True) == rp.KEEP
    assert rp.action(rec, 11, same, as_root=False) == rp.WRITE
    chmodded = rp.Local(stat.S_IFREG | 0o600, 10, 5, 7, 7)
    assert rp.action(rec, 10, chmodded, as_root=False) == rp.FIX
    other_owner = rp.Local(stat.S_IFREG | 0o640, 10, 5, 0, 0)
    assert rp.action(rec, 10, other_owner, as_root=False) == rp.KEEP
    assert rp.action(rec, 10, other_owner, as_root=True) == rp.FIX
    link = recorded({"veil": {"kind": "symlink", "mtime_ns": 5}}, is_dir=False)
    here = rp.Local(stat.S_IFLNK | 0o777, 1, 5, 0, 0, "a")
    assert rp.action(link, 1, here, as_root=False, target="a") == rp.KEEP
    assert rp.action(link, 1, here, as_root=False, target="b") == rp.WRITE
    assert rp.foreign(rec, 0) and not rp.foreign(rec, 7)


def test_include_patterns() -> None:
    assert rp.included("a/b/c", ["a/b"]) and rp.included("a/b", ["a/b"])
    assert not rp.included("a/bc", ["a/b"]) and rp.included("x/y.txt", ["*.txt"])
    assert rp.may_hold("a", ["a/b"]) and not rp.may_hold("z", ["a/b"])
    assert rp.may_hold("z", ["*.txt"]) and rp.included("anything", [])


def test_backupdb_in_tahoes_schema(tmp_path: Path) -> None:
    path = tmp_path / "backupdb.sqlite"
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    st = f.lstat()
    with BackupDB(path) as db:
        assert db.file_cap(str(f), st) is None
        db.file_done(str(f), st, CAP)
        assert db.file_cap(str(f), st) == CAP
        db.dir_done("hash", "URI:DIR2-LIT:")
        assert db.dir_cap("hash") == "URI:DIR2-LIT:" and db.dir_cap("other") is None
    raw = sqlite3.connect(path)
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"version", "local_files", "caps", "last_upload", "directories"} <= tables
    assert raw.execute("SELECT version FROM version").fetchone() == (2,)
    (cap,) = raw.execute("SELECT filecap FROM caps").fetchone()
    assert cap == CAP.encode()  # bytes, as Tahoe 1.20 writes them
    row = raw.execute("SELECT path, size, mtime, ctime FROM local_files").fetchone()
    assert row == (str(f), 3, int(st.st_mtime), int(st.st_ctime))
    # a row Tahoe wrote alone (no veil row) is trusted on Tahoe's terms
    raw.execute("DELETE FROM veil_local_files")
    raw.commit()
    with BackupDB(path) as db:
        assert db.file_cap(str(f), st) == CAP
    # veil's row catches what Tahoe's whole seconds miss (same second, new inode)
    with BackupDB(path) as db:
        db.file_done(str(f), st, CAP)
        f.unlink()
        f.write_bytes(b"xyz")
        assert db.file_cap(str(f), f.lstat()) is None


def test_backupdb_files_in_one_directory(tmp_path: Path) -> None:
    """One query per directory: its own files, not a sibling's with the same
    prefix, not those further down."""
    paths = ["d/a", "d/b c", "d/\u00e9t\u00e9", "d/sub/x", "dz/y", "d-1/z", "e"]
    stats = {}
    for rel in paths:
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(rel.encode())
        stats[rel] = f.lstat()
    with BackupDB(tmp_path / "backupdb.sqlite") as db:
        for rel in paths:
            db.file_done(str(tmp_path / rel), stats[rel], f"{CAP}{len(rel)}")
        found = db.files_in(str(tmp_path / "d"))
        assert sorted(found) == ["a", "b c", "\u00e9t\u00e9"]
        assert found["b c"].cap_if(stats["d/b c"]) == f"{CAP}5"
        assert found["a"].cap_if(stats["e"]) is None  # another file's size and times
        assert sorted(db.files_in(str(tmp_path / "d") + "/")) == sorted(found)
        assert sorted(db.files_in(str(tmp_path))) == ["e"]


def test_backupdb_is_the_owners_only(tmp_path: Path) -> None:
    """It names every file backed up and holds its read cap."""
    old_umask = os.umask(0o022)
    try:
        f = tmp_path / "f"
        f.write_bytes(b"abc")
        with BackupDB(tmp_path / "new.sqlite") as db:
            db.file_done(str(f), f.lstat(), CAP)
            made = sorted(tmp_path.glob("new.sqlite*"))
            assert len(made) == 3  # the database, its -wal and -shm
            assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in made), made
        tahoes = tmp_path / "tahoe.sqlite"  # as tahoe backup leaves it, under the umask
        BackupDB(tahoes).close()
        tahoes.chmod(0o644)
        with BackupDB(tahoes) as db:
            assert db.dir_cap("x") is None
        assert stat.S_IMODE(tahoes.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_backupdb_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "backupdb.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ConfigError, match="cannot be used as a backup database"):
        BackupDB(path)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_and_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    from veil.frontends.cli import backup_report

    monkeypatch.setattr(backup_report, "REDRAW", 0.0)
    monkeypatch.setattr(backup_report, "JSON_EVERY", 0.0)
    err, out = _Terminal(), io.StringIO()
    r = backup_report.Reporter(
        "backup", as_json=False, total_files=4, total_bytes=4096, err=err, out=out
    )
    r.file(1024)
    r.file(1024)
    line = err.getvalue()
    assert "backup: 2/4 files, 2.0 KiB/4.0 KiB" in line and "ETA" in line and "/s" in line
    r.warning("skipped x")
    r.summary("done")
    assert "veil: warning: skipped x" in err.getvalue() and out.getvalue() == "done\n"
    out = io.StringIO()
    j = backup_report.Reporter("backup", as_json=True, total_files=2, total_bytes=10, out=out)
    j.file(5)
    j.warning("w")
    j.summary("ignored", files=2)
    kinds = [json.loads(x)["message_type"] for x in out.getvalue().splitlines()]
    assert kinds == ["status", "warning", "summary"]
    status = json.loads(out.getvalue().splitlines()[0])
    assert status["percent_done"] == 0.5 and status["files_done"] == 1


def test_exclude_options(tmp_path: Path) -> None:
    import argparse

    from veil.frontends.cli.backup import build_excluder

    listing = tmp_path / "excludes"
    listing.write_text("*.iso\n\n  cache  \nnaïve*\n", encoding="utf-8")
    args = argparse.Namespace(exclude=["*.tmp"], exclude_from=[str(listing)], exclude_vcs=True)
    ex = build_excluder(args)
    for name in ("a.tmp", "x.iso", "cache", "naïve.txt", ".git", "_darcs"):
        assert ex.excluded(name), name
    assert not ex.excluded("keep.txt")
    args = argparse.Namespace(exclude=[], exclude_from=[str(tmp_path / "nope")], exclude_vcs=False)
    with pytest.raises(UsageError, match="cannot read the exclude file"):
        build_excluder(args)
