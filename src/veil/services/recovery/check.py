"""``veil recovery check``: does the grid still hold every snapshot a record names?

Walks each task's snapshot (its directories are read, so they are whole)
and asks every server which shares of each immutable file it holds; a file
with fewer than ``k`` distinct shares among the servers that answer is
missing. Shares are listed, not downloaded (as Tahoe's checker without
``--verify``). Nothing is written anywhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from veil.errors import VeilError
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap
from veil.formats.recovery_document import LatestRecord, Task
from veil.services.broker import StorageBroker
from veil.services.directories import Directories
from veil.services.interfaces import StorageClient

CALL_TIMEOUT = 60.0


@dataclass
class TaskCheck:
    task: Task
    files: int = 0
    directories: int = 0
    missing: list[str] = field(default_factory=list)  # paths below the snapshot

    @property
    def whole(self) -> bool:
        return not self.missing


async def _shares(broker: StorageBroker, cap: CHKReadCap) -> int:
    async def one(server: StorageClient) -> frozenset[int]:
        try:
            return await asyncio.wait_for(server.list_shares(cap.storage_index), CALL_TIMEOUT)
        except (VeilError, TimeoutError, OSError):
            return frozenset()

    found = await asyncio.gather(*(one(s) for s in broker.servers))
    return len(frozenset().union(*found)) if found else 0


async def _walk(
    dirs: Directories, broker: StorageBroker, cap: mc.DirCap, rel: str, out: TaskCheck
) -> None:
    try:
        children = await dirs.children(cap)
    except VeilError:
        out.missing.append(rel or ".")
        return
    out.directories += 1
    for name, entry in children.items():
        child = mc.parse_any(entry.ro_cap or "")
        path = f"{rel}/{name}" if rel else name
        if isinstance(child, mc.DirCap):
            await _walk(dirs, broker, child, path, out)
            continue
        out.files += 1
        if isinstance(child, CHKReadCap) and await _shares(broker, child) < child.needed_shares:
            out.missing.append(path)


async def check_record(
    dirs: Directories, broker: StorageBroker, record: LatestRecord
) -> list[TaskCheck]:
    results = []
    for task in record.tasks:
        out = TaskCheck(task)
        snapshot = mc.parse_any(task.snapshot or "")
        if isinstance(snapshot, mc.DirCap):
            await _walk(dirs, broker, snapshot, "", out)
        else:
            out.missing.append(".")
        results.append(out)
    return results


__all__ = ["TaskCheck", "check_record"]
