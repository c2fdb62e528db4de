"""One backup by this node, from the walk to the last record: what ``veil backup``
and the web UI's backup page both run.

The local tree is walked and uploaded while the target's history
(``PATH``, ``PATH/Archives``) is opened or made; then the snapshot is linked
(``Archives/<time>``, then ``Latest``) while the node's recovery record names
it, and the node's renewal lists are refreshed. What could not be recorded
is a warning line: the snapshot is made all the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from veil.adapters.node.recovery_state import after_backup
from veil.adapters.node.renewal_state import after_backup_refresh
from veil.services.backup.backup_run import BackupRun, BackupSummary, together
from veil.services.backup.snapshots import link_snapshot, open_history

if TYPE_CHECKING:
    from veil.adapters.node.client_session import Client
    from veil.formats import mutable_caps as mc


@dataclass
class SnapshotMade:
    name: str  # Archives/<name>
    summary: BackupSummary
    warnings: list[str] = field(default_factory=list)  # one line each, for the end


async def make_snapshot(
    client: Client,
    node_dir: Path,
    run: BackupRun,
    local: Path,
    target: tuple[mc.DirCap, list[str]],
    shown: str,
    excludes: list[str],
) -> SnapshotMade:
    """Back ``local`` up under ``target`` (a root directory and the path below it;
    ``shown``: how the user wrote it, kept in the recovery record)."""
    dirs = client.directories()
    root, parts = target
    (snapshot, _), history = await together(run.run(local), open_history(dirs, root, parts))
    name = history.name_for(time.time())
    s = run.summary
    _, recorded = await together(  # the history and the recovery record: neither waits
        link_snapshot(dirs, history, name, snapshot, s.as_json()),
        after_backup(client, node_dir, local, shown, excludes, snapshot.to_string(), name),
    )
    refreshed = await after_backup_refresh(client, node_dir)
    made = SnapshotMade(name, s, [line for line in (recorded, refreshed) if line])
    made.warnings += [f"not backed up (permission denied): {path}" for path in s.unreadable]
    return made


__all__ = ["SnapshotMade", "make_snapshot"]
