"""The mutable "latest" record: which snapshot is newest for every backup task.

One SDMF mutable file per node (its write cap in the node's private
directory, its read cap in every recovery blob). Every backup replaces its
task's entry and adds one to the counter (``record_backup``); a restore
reads it (``read_latest``) and so finds backups newer than its blob. The
read goes through the server map, which takes the version with the highest
sequence number among the servers that answer: a server that serves an
older record than the others is outvoted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from veil.errors import CapabilityError
from veil.formats import mutable_caps as mc
from veil.formats.recovery_blob import RecoveryError
from veil.formats.recovery_document import LatestRecord, Task


class MutableStore(Protocol):
    """What the record needs of ``veil.services.mutable.files.MutableFiles``."""

    async def read(self, cap: mc.SSKWriteCap | mc.SSKReadCap) -> bytes: ...
    async def create(self, data: bytes) -> mc.SSKWriteCap: ...
    async def modify(
        self, cap: mc.SSKWriteCap, change: bytes | Callable[[bytes], bytes]
    ) -> int: ...


def parse_record_cap(text: str) -> mc.SSKWriteCap | mc.SSKReadCap:
    cap = mc.parse_any(text)
    if not isinstance(cap, mc.SSKWriteCap | mc.SSKReadCap):
        raise CapabilityError("the latest record's cap is not a mutable file cap")
    return cap


async def read_latest(files: MutableStore, cap_text: str) -> LatestRecord:
    return LatestRecord.from_bytes(await files.read(parse_record_cap(cap_text)))


async def record_backup(
    files: MutableStore, write_cap: str | None, task: Task, *, now: float | None = None
) -> tuple[str, LatestRecord]:
    """Put ``task`` (with its new snapshot) in the record, made when ``write_cap``
    is None; the record's write cap and what it now says."""
    when = time.time() if now is None else now
    if write_cap is None:
        record = LatestRecord().with_task(task, when)
        made = await files.create(record.to_bytes())
        return made.to_string(), record
    cap = parse_record_cap(write_cap)
    if not isinstance(cap, mc.SSKWriteCap):
        raise RecoveryError("this node holds only the read cap of its latest record")
    written: list[LatestRecord] = []

    def change(current: bytes) -> bytes:  # on what the grid holds (again, if another wrote)
        written.append(LatestRecord.from_bytes(current).with_task(task, when))
        return written[-1].to_bytes()

    await files.modify(cap, change)  # one read of the record, inside the change
    return write_cap, written[-1]


def newest(blob: LatestRecord, grid: LatestRecord | None) -> tuple[LatestRecord, str | None]:
    """The record to restore from, and a line saying how the blob compares."""
    if grid is None:
        return blob, "the grid's latest record could not be read; restoring what the blob says"
    if grid.counter > blob.counter:
        return grid, (
            f"the blob is older than the grid's latest record (blob: backup #{blob.counter} "
            f"of {_when(blob.time)}; grid: #{grid.counter} of {_when(grid.time)}); "
            "restoring the newer"
        )
    if grid.counter < blob.counter:
        return blob, (
            f"the grid's latest record (#{grid.counter}) is older than the blob's "
            f"(#{blob.counter}): restoring what the blob says"
        )
    return grid, None


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


__all__ = ["newest", "read_latest", "record_backup"]
