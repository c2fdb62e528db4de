"""Restores into a full disk and into a read-only one (small tmpfs mounts,
which need root): a clear error, and nothing half-written under a final name.
A file that keeps changing while it is backed up is skipped and listed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_backup_inprocess import Grid
from veil.services.backup.restore_run import RestoreError

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    assert os.geteuid() == 0, "mounting a tmpfs needs root: the suite runs as root (as CI does)"
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_full_disk_and_read_only_target(tmp_path: Path, small_disk: Path) -> None:
    async def main() -> None:
        src = tmp_path / "src"
        src.mkdir()
        (src / "a-small").write_bytes(b"s" * 1000)
        (src / "b-big").write_bytes(os.urandom(600_000))
        grid = Grid(tmp_path / "db.sqlite")
        cap, _ = await grid.backup(src, 1_700_000_000)
        out = small_disk / "out"
        with pytest.raises(RestoreError, match="No space left on device"):
            await grid.restore(cap, out, slots=1)
        names = sorted(p.name for p in out.iterdir())
        assert "b-big" not in names and ".b-big.veil-part" not in names
        assert (out / "a-small").read_bytes() == b"s" * 1000
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        with pytest.raises(RestoreError, match="Read-only file system"):
            await grid.restore(cap, small_disk / "elsewhere")

    asyncio.run(main())


def test_file_changing_while_read_is_skipped(tmp_path: Path) -> None:
    async def main() -> None:
        src = tmp_path / "src"
        src.mkdir()
        (src / "steady").write_bytes(b"x" * 100)
        growing = src / "growing.log"
        growing.write_bytes(os.urandom(3_000_000))
        stop = threading.Event()

        def append() -> None:
            with open(growing, "ab") as f:
                while not stop.is_set():
                    f.write(b"more\n")
                    f.flush()

        writer = threading.Thread(target=append)
        writer.start()
        try:
            grid = Grid(tmp_path / "db.sqlite")
            cap, s = await grid.backup(src, 1_700_000_000)
        finally:
            stop.set()
            writer.join()
        assert [line for line in s.skipped if "kept changing" in line]
        assert list(await grid.dirs.children(cap)) == ["steady"]

    asyncio.run(main())
