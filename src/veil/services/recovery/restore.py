"""A whole recovery: every task of the newest latest record back in its directory.

Over ``Directories``/``Downloader``/``MutableFiles`` only (the node is made
by the command, ``veil.frontends.cli.recovery``). ``plan_restore`` reads the
grid's latest record, takes the newer of it and the blob's copy, and checks
every target directory before anything is written (each must be empty,
missing, or an unfinished restore's). ``restore_tasks`` then restores each
snapshot with ``veil.services.backup.restore_run`` (modes, times, links,
owners as root). ``new_roots`` serves the read-only tier: a new writable
root for every alias, with the restored backups' snapshots linked under the
same paths, so two machines never share a write cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from veil.errors import UsageError, VeilError
from veil.formats import mutable_caps as mc
from veil.formats.recovery_document import LatestRecord, RecoveryDocument, Task
from veil.services.backup.restore_run import RestoreRun, RestoreSummary, finish_target
from veil.services.backup.snapshots import ARCHIVES, LATEST, ensure_directory, linking
from veil.services.directories import Directories, entry_for
from veil.services.immutable.downloader import Downloader
from veil.services.recovery.latest import MutableStore, newest, read_latest

MARKER = ".veil-restore"


def local_path(task: Task, home: Path) -> Path:
    if task.local == "~" or task.local.startswith("~/"):
        return home / task.local[2:]
    return Path(task.local)


def split_target(target: str) -> tuple[str, list[str]]:
    alias, sep, path = target.partition(":")
    if not sep or not alias:
        raise UsageError(f"the backup target {target!r} in the blob is not ALIAS:PATH")
    return alias, [p for p in path.split("/") if p]


@dataclass
class Plan:
    record: LatestRecord
    note: str | None  # how the blob compares with the grid's record
    targets: list[tuple[Task, Path]] = field(default_factory=list)


async def plan_restore(files: MutableStore, doc: RecoveryDocument, home: Path) -> Plan:
    grid: LatestRecord | None = None
    if doc.latest_cap:
        try:
            grid = await read_latest(files, doc.latest_cap)
        except VeilError:
            grid = None
    record, note = newest(doc.latest, grid)
    plan = Plan(record, note)
    for task in record.tasks:
        if not task.snapshot:
            continue
        where = local_path(task, home)
        try:
            listed = [p.name for p in where.iterdir()] if where.exists() else []
        except OSError as exc:
            raise UsageError(f"cannot read {where}: {exc.strerror}") from None
        if listed and MARKER not in listed:
            raise UsageError(
                f"{where} is not empty; a recovery restores only into empty directories",
                hint="move it away (or empty it) and run the restore again; nothing was written",
            )
        plan.targets.append((task, where))
    return plan


@dataclass
class Restored:
    task: Task
    where: Path
    summary: RestoreSummary


async def restore_tasks(
    dirs: Directories,
    downloader: Downloader,
    plan: Plan,
    *,
    on_file: Callable[[int, bool], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> list[Restored]:
    from veil.services.backup.restore_run import prepare_target

    done = []
    for task, where in plan.targets:
        snapshot = mc.parse_any(task.snapshot or "")
        if not isinstance(snapshot, mc.DirCap):
            raise UsageError(f"the snapshot of {task.target} in the record is not a directory")
        prepare_target(where, overwrite=False)
        run = RestoreRun(dirs, downloader, on_file=on_file, on_warning=on_warning)
        summary = await run.run(snapshot, where)
        if not summary.foreign:
            finish_target(where)
        done.append(Restored(task, where, summary))
    return done


async def new_roots(
    dirs: Directories, doc: RecoveryDocument, record: LatestRecord
) -> dict[str, str]:
    """Read-only tier: {alias: a new root's write cap}, each restored backup's
    snapshot linked as ``PATH/Archives/<name>`` and ``PATH/Latest``."""
    roots: dict[str, mc.DirCap] = {}
    for alias in doc.aliases:
        roots[alias] = await dirs.create()
    for task in record.tasks:
        alias, parts = split_target(task.target)
        if alias not in roots:
            roots[alias] = await dirs.create()
        if not task.snapshot:
            continue
        base = await ensure_directory(dirs, roots[alias], parts)
        archives = await ensure_directory(dirs, base, [ARCHIVES])
        entry = entry_for(task.snapshot)
        await dirs.modify(archives, linking(task.snapshot_name or "restored", entry))
        await dirs.modify(base, linking(LATEST, entry))
    return {alias: cap.to_string() for alias, cap in roots.items()}


__all__ = ["Plan", "Restored", "local_path", "new_roots", "plan_restore", "restore_tasks"]
