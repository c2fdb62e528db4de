"""How many files a backup has in flight: many small ones (they share batch
requests), at most ``LARGE_IN_FLIGHT`` large ones (each streams its shares and
holds its buffers)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, BinaryIO

from veil.adapters.node.backupdb import BackupDB
from veil.formats.params import EncodingParameters
from veil.services.backup.backup_run import LARGE, LARGE_IN_FLIGHT, BackupRun
from veil.services.directories import Directories
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.services.mutable.files import MutableFiles
from veil.testing.local_grid import local_grid

PARAMS = EncodingParameters(2, 3, 4)


class Watching(Uploader):
    """Records the most uploads of each size class running at once."""

    now = {True: 0, False: 0}
    most = {True: 0, False: 0}

    async def upload_file(self, f: BinaryIO, size: int, *a: Any, **k: Any) -> Any:
        large = size > LARGE
        Watching.now[large] += 1
        Watching.most[large] = max(Watching.most[large], Watching.now[large])
        try:
            await asyncio.sleep(0.02)  # long enough for the others to start
            return await super().upload_file(f, size, *a, **k)
        finally:
            Watching.now[large] -= 1


def test_many_small_files_at_once_and_few_large_ones(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(LARGE_IN_FLIGHT + 4):
        (tree / f"big{i}").write_bytes(os.urandom(LARGE + 1))
    for i in range(60):
        (tree / f"small{i}").write_bytes(os.urandom(100 + i))

    async def go() -> None:
        broker, _ = local_grid(4)
        uploader = Watching(broker, PARAMS, lease_secret=b"s" * 32, convergence_secret=b"c" * 32)
        dirs = Directories(MutableFiles(broker, PARAMS, lease_secret=b"s" * 32), Downloader(broker))
        with BackupDB(tmp_path / "backupdb.sqlite") as db:
            run = BackupRun(uploader, dirs, db)
            await run.run(tree)
        assert run.summary.files_new == LARGE_IN_FLIGHT + 4 + 60

    asyncio.run(go())
    assert Watching.most[True] == LARGE_IN_FLIGHT
    assert Watching.most[False] > LARGE_IN_FLIGHT  # small ones are not held to it
