"""Backups on an in-process grid: a tree with every kind of entry backed up,
changed, backed up again; each snapshot restored and compared byte by byte,
mode, time, link target and owner; reruns after an interrupted restore; the
backup database skipping what is unchanged; unreadable files (exit 3 path)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from veil.adapters.node.backupdb import BackupDB
from veil.formats import mutable_caps as mc
from veil.formats.params import EncodingParameters
from veil.services.backup.backup_run import BackupRun, BackupSummary, together
from veil.services.backup.metadata import Excluder
from veil.services.backup.restore_run import (
    RestoreRun,
    RestoreSummary,
    finish_target,
    prepare_target,
)
from veil.services.backup.snapshots import link_snapshot, list_snapshots, open_history
from veil.services.directories import Directories
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.services.mutable.files import MutableFiles
from veil.testing.local_grid import local_grid

PARAMS = EncodingParameters(2, 3, 4)
NFD = "e\u0301t\u00e9"  # "été" with the first é decomposed


class Grid:
    def __init__(self, db_path: Path, *, batch: bool = False) -> None:
        self.broker, self.servers = local_grid(4, batch=batch)
        self.uploader = Uploader(
            self.broker, PARAMS, lease_secret=b"s" * 32, convergence_secret=b"c" * 32
        )
        self.downloader = Downloader(self.broker)
        files = MutableFiles(self.broker, PARAMS, lease_secret=b"s" * 32)
        self.dirs = Directories(files, self.downloader)
        self.db = BackupDB(db_path)
        self.base: mc.DirCap | None = None

    async def backup(self, root: Path, when: float, **kw: Any) -> tuple[mc.DirCap, BackupSummary]:
        """As ``veil backup``: the history opened while the files upload."""
        run = BackupRun(self.uploader, self.dirs, self.db, **kw)
        if self.base is None:
            self.base = await self.dirs.create()
        (cap, _), history = await together(run.run(root), open_history(self.dirs, self.base, []))
        name = history.name_for(when)
        await link_snapshot(self.dirs, history, name, cap, run.summary.as_json())
        return cap, run.summary

    async def restore(self, cap: mc.DirCap, target: Path, **kw: Any) -> RestoreSummary:
        prepare_target(target, overwrite=kw.pop("overwrite", False))
        summary = await RestoreRun(self.dirs, self.downloader, **kw).run(cap, target)
        if not summary.foreign:  # else left unfinished for the rerun as root
            finish_target(target)
        return summary


def make_tree(root: Path) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty dir").mkdir()
    (root / "a" / "x.txt").write_bytes(b"x" * 5000)
    (root / "a" / "b" / "c" / "deep").write_bytes(os.urandom(200_000))
    (root / "empty").write_bytes(b"")
    (root / "tiny").write_bytes(b"hi")
    (root / "with space.txt").write_bytes(b"space")
    (root / "-leading-dash").write_bytes(b"dash")
    (root / "unicodé ☃").write_bytes(b"snow")
    (root / NFD).write_bytes(b"nfd")
    (root / "secret").write_bytes(b"s" * 100)
    os.chmod(root / "secret", 0o600)
    (root / "tool").write_bytes(b"#!/bin/sh\n" * 10)
    os.chmod(root / "tool", 0o755)
    (root / "suid").write_bytes(b"suid" * 30)
    os.chmod(root / "suid", 0o4755)
    os.symlink("a/x.txt", root / "to file")
    os.symlink("a/b", root / "to dir")
    os.symlink("/no/such/place", root / "dangling")
    os.mkfifo(root / "fifo")
    (root / os.fsdecode(b"bad-\xff-name")).write_bytes(b"not utf-8")
    os.chmod(root / "a" / "b", 0o750)
    os.utime(root / "tiny", ns=(1_000_000_123_456_789, 1_000_000_123_456_789))


def picture(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple[Any, ...]]:
    """Everything a restore must give back, per path."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if rel in skip or name.startswith(".veil") or name.endswith(".veil-part"):
                continue
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path), st.st_mtime_ns, st.st_uid)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns, st.st_uid)
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns, st.st_uid, digest)
    return out


NOT_KEPT = frozenset({"fifo", os.fsdecode(b"bad-\xff-name")})


def expected(root: Path) -> dict[str, tuple[Any, ...]]:
    """The source picture with names as the grid keeps them (NFC)."""
    import unicodedata

    return {unicodedata.normalize("NFC", k): v for k, v in picture(root, NOT_KEPT).items()}


@pytest.mark.parametrize("batch", [False, True], ids=["standard", "batched"])
def test_backup_change_backup_restore_every_snapshot(tmp_path: Path, batch: bool) -> None:
    async def main() -> None:
        src = tmp_path / "src"
        make_tree(src)
        grid = Grid(tmp_path / "db.sqlite", batch=batch)
        first_picture = expected(src)
        cap1, s1 = await grid.backup(src, 1_700_000_000)
        assert s1.files_new == 11 and s1.files_unchanged == 0 and s1.symlinks == 3
        assert len(s1.skipped) == 2  # the FIFO and the name that is not UTF-8
        assert any("not valid UTF-8" in line for line in s1.skipped)
        # change: edit, add, remove, chmod
        (src / "a" / "x.txt").write_bytes(b"changed")
        (src / "new file").write_bytes(b"new")
        (src / "with space.txt").unlink()
        os.chmod(src / "tool", 0o700)
        second_picture = expected(src)
        cap2, s2 = await grid.backup(src, 1_700_003_600)
        assert s2.files_new == 3  # x.txt, new file, tool (its ctime changed)
        assert s2.files_unchanged == 8 and s2.dirs_unchanged >= 2  # a/b/c and a/b unchanged
        assert grid.base is not None
        names = [s.name for s in await list_snapshots(grid.dirs, grid.base)]
        assert names == ["2023-11-14_22:13:20Z", "2023-11-14_23:13:20Z"]
        one, two = tmp_path / "one", tmp_path / "two"
        await grid.restore(cap1, one)
        await grid.restore(cap2, two)
        assert expected(one) == first_picture
        assert expected(two) == second_picture
        assert os.lstat(two / "tiny").st_mtime_ns == 1_000_000_123_456_789
        # a third backup of an unchanged tree uploads nothing at all
        _, s3 = await grid.backup(src, 1_700_007_200)
        assert s3.files_new == 0 and s3.dirs_new == 0
        # two backups in one second: the second takes the next second's name
        (src / "new file").write_bytes(b"newer")
        cap4, _ = await grid.backup(src, 1_700_007_200.5)
        found = {s.name: s.cap for s in await list_snapshots(grid.dirs, grid.base)}
        assert len(found) == 4 and found["2023-11-15_00:13:21Z"] == cap4
        assert found["2023-11-15_00:13:20Z"] not in (cap4, None)

    asyncio.run(main())


def test_restore_rerun_restores_only_what_is_missing(tmp_path: Path) -> None:
    async def main() -> None:
        src = tmp_path / "src"
        make_tree(src)
        grid = Grid(tmp_path / "db.sqlite")
        cap, _ = await grid.backup(src, 1_700_000_000)
        out = tmp_path / "out"
        task = asyncio.ensure_future(grid.restore(cap, out, slots=1))
        while not (out / "a" / "x.txt").exists():
            await asyncio.sleep(0.001)
        task.cancel()  # interrupted part-way
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not [p for p in out.rglob("*") if p.name.endswith(".veil-part")]
        assert (out / ".veil-restore").exists()  # the marker lets the rerun in
        (out / "tiny").unlink(missing_ok=True)
        (out / ".empty.veil-part").write_bytes(b"left by a killed run")
        again = await grid.restore(cap, out)
        assert again.files_kept >= 1
        assert not (out / ".empty.veil-part").exists()
        assert expected(out) == expected(src)
        # a directory that is neither empty nor an unfinished restore is refused
        with pytest.raises(Exception, match="is not empty"):
            prepare_target(out, overwrite=False)
        fixed = await grid.restore(cap, out, overwrite=True)
        assert fixed.files_written == 0 and fixed.files_kept == 14  # files and links

    asyncio.run(main())


def test_include_restores_a_part(tmp_path: Path) -> None:
    async def main() -> None:
        src = tmp_path / "src"
        make_tree(src)
        grid = Grid(tmp_path / "db.sqlite")
        cap, _ = await grid.backup(src, 1_700_000_000)
        out = tmp_path / "out"
        await grid.restore(cap, out, include=["a/b"])
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        assert files == ["a/b/c/deep"]

    asyncio.run(main())


def test_excludes_and_file_changing_while_read(tmp_path: Path) -> None:
    async def main() -> None:
        src = tmp_path / "src"
        (src / ".git").mkdir(parents=True)
        (src / ".git" / "HEAD").write_bytes(b"ref")
        (src / "keep.txt").write_bytes(b"k" * 100)
        (src / "drop.tmp").write_bytes(b"d" * 100)
        grid = Grid(tmp_path / "db.sqlite")
        from veil.services.backup.metadata import VCS_PATTERNS

        cap, s = await grid.backup(src, 1_700_000_000, excluder=Excluder(["*.tmp", *VCS_PATTERNS]))
        assert list(await grid.dirs.children(cap)) == ["keep.txt"]
        assert s.files_new == 1

    asyncio.run(main())


def test_foreign_owners_listed_when_not_root(tmp_path: Path) -> None:
    assert os.geteuid() == 0, (
        "making files of another owner needs root: the suite runs as root (as CI does)"
    )

    async def main() -> None:
        src = tmp_path / "src"
        src.mkdir()
        (src / "theirs").write_bytes(b"t" * 100)
        os.chown(src / "theirs", 12345, 12345)
        (src / "mine").write_bytes(b"m" * 100)
        grid = Grid(tmp_path / "db.sqlite")
        cap, _ = await grid.backup(src, 1_700_000_000)
        out = tmp_path / "out"
        s = await grid.restore(cap, out, as_root=False)
        assert s.foreign == ["theirs"]
        assert os.lstat(out / "theirs").st_uid == os.geteuid()
        fixed = await grid.restore(cap, out, as_root=True)  # the rerun as root
        assert fixed.fixed == 1 and os.lstat(out / "theirs").st_uid == 12345

    asyncio.run(main())


def test_unreadable_files_are_listed_and_the_rest_kept(tmp_path: Path) -> None:
    assert os.geteuid() == 0, (
        "switching to another user needs root: the suite runs as root (as CI does)"
    )

    async def main(top: Path) -> None:
        src = top / "src"
        src.mkdir()
        (src / "open").write_bytes(b"o" * 100)
        (src / "closed").write_bytes(b"c" * 100)
        os.chmod(src / "open", 0o644)
        os.chmod(src / "closed", 0o600)
        (src / "sealed").mkdir(mode=0o700)
        dbdir = top / "db"
        dbdir.mkdir()
        os.chmod(dbdir, 0o777)
        os.seteuid(65534)
        try:
            grid = Grid(dbdir / "db.sqlite")
            cap, s = await grid.backup(src, 1_700_000_000)
        finally:
            os.seteuid(0)
        assert sorted(Path(p).name for p in s.unreadable) == ["closed", "sealed"]
        assert list(await grid.dirs.children(cap)) == ["open"]

    top = Path(tempfile.mkdtemp(prefix="veil-unreadable-"))  # tmp_path is root's only
    os.chmod(top, 0o755)
    try:
        asyncio.run(main(top))
    finally:
        shutil.rmtree(top)
