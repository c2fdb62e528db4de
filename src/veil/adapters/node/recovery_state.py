"""A node's recovery state: ``private/recovery/`` and what a blob takes from the node.

    private/recovery/latest.cap          write cap of the node's latest record (0600)
    private/recovery/read-only-targets   ALIAS:PATH restored from a read-only blob (0600)

``grid_settings`` gathers what a fresh machine needs to reach the grid
(introducers, static servers, encoding, anonymity settings but never the
node's own onion key). ``after_backup`` is called by ``veil backup`` once a
snapshot is linked: it puts the task in the latest record (made on the
first backup). ``refuse_read_only`` stops a backup into a place a read-only
blob restored: that blob gave no write authority, so backups cannot go on
from this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from veil.adapters.node.files import present, private_dir, read_text, write_private
from veil.errors import UsageError

if TYPE_CHECKING:
    from veil.adapters.node.client_session import Client
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.formats.recovery_document import GridSettings, RecoveryDocument
    from veil.services.recovery.check import TaskCheck

TOR_KEYS_LEFT_OUT = ("onion",)  # the old node's onion service is not the new client's


def recovery_dir(node: Path) -> Path:
    return node / "private" / "recovery"


def latest_write_cap(node: Path) -> str | None:
    path = recovery_dir(node) / "latest.cap"
    return read_text(path).strip() or None if present(path) else None


def save_latest_write_cap(node: Path, cap: str) -> None:
    private_dir(recovery_dir(node))
    write_private(recovery_dir(node) / "latest.cap", cap + "\n")


def read_only_targets(node: Path) -> list[str]:
    path = recovery_dir(node) / "read-only-targets"
    if not present(path):
        return []
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


def save_read_only_targets(node: Path, targets: list[str]) -> None:
    private_dir(recovery_dir(node))
    write_private(recovery_dir(node) / "read-only-targets", "".join(t + "\n" for t in targets))


def grid_settings(node: NodeDirectory) -> GridSettings:
    from veil.formats.recovery_document import GridSettings

    p = node.encoding_parameters()
    tor = {k: v for k, v in node.section("tor").items() if not k.startswith(TOR_KEYS_LEFT_OUT)}
    return GridSettings(
        node.introducers(),
        node.servers(),
        (p.needed, p.happy, p.total),
        node.hides_ip,
        tor,
        node.section("connections"),
    )


def home_relative(local: Path) -> str:
    """``~/rel`` for a directory under the home directory (so a new machine's
    home takes it), else the absolute path."""
    full = Path(os.path.abspath(os.path.expanduser(local)))
    home = Path(os.path.expanduser("~"))
    try:
        return "~/" + str(full.relative_to(home)) if full != home else "~"
    except ValueError:
        return str(full)


def refuse_read_only(node: Path, target: str) -> None:
    if target.rstrip("/") in read_only_targets(node):
        raise UsageError(
            f"{target} was restored from a read-only recovery blob: backups cannot go on "
            "from this machine (the blob gave no write authority)",
            hint="back up to a new place (e.g. another ALIAS:PATH), or restore from a "
            "blob made with: veil recovery create --with-write-caps",
        )


async def after_backup(
    client: Client,
    node: Path,
    local: Path,
    target: str,
    excludes: list[str],
    snapshot: str,
    name: str,
) -> str | None:
    """Record a backup's new snapshot in the node's latest record (made on the
    first backup); a warning line if that could not be done (the snapshot is
    linked all the same)."""
    from veil.errors import VeilError
    from veil.formats.recovery_document import Task
    from veil.services.recovery.latest import record_backup

    task = Task(home_relative(local), target.rstrip("/"), excludes, False, snapshot, name)
    known = latest_write_cap(node)
    try:
        cap, _ = await record_backup(client.mutable_files(), known, task)
    except VeilError as exc:
        return f"the snapshot is linked, but the recovery record was not updated: {exc}"
    if known is None:
        save_latest_write_cap(node, cap)
    return None


async def check_on_grid(doc: RecoveryDocument) -> tuple[str | None, list[TaskCheck]]:
    """Whether the grid still holds every snapshot a blob names: from a scratch
    client node made of the blob's grid settings (removed afterwards), the newest
    latest record (the grid's, or the blob's when the grid's cannot be read), a
    line saying how the blob compares, and one result per backup task."""
    import contextlib
    import shutil
    import tempfile

    from veil.adapters.node.client_session import open_client
    from veil.adapters.node.creation import create_client_from_grid
    from veil.errors import VeilError
    from veil.services.recovery.check import check_record
    from veil.services.recovery.latest import newest, read_latest

    scratch = Path(tempfile.mkdtemp(prefix="veil-check-"))
    try:
        create_client_from_grid(scratch / "node", doc.grid)
        async with open_client(scratch / "node") as client:
            grid = None
            if doc.latest_cap:
                with contextlib.suppress(VeilError):
                    grid = await read_latest(client.mutable_files(), doc.latest_cap)
            record, note = newest(doc.latest, grid)
            return note, await check_record(client.directories(), client.broker, record)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
