"""The owner's renewal caps on a node: ``private/renewals.json`` (0600) and the
verify-cap lists they point to.

Per name it keeps the tree's root, the pointer's write cap and the renewal cap
itself. ``refresh_all`` publishes a new list for every renewal cap; ``veil
backup`` and the web UI's backups call ``after_backup_refresh`` after each
snapshot so that a friend's ``veil renew`` also keeps the new snapshot alive.
The commands are in ``veil.frontends.cli.renewal``; the work of listing and
renewing is ``veil.services.renewal``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.errors import UsageError, VeilError

if TYPE_CHECKING:
    from veil.adapters.node.client_session import Client

STATE = "renewals.json"


def load_state(node_dir: Path) -> dict[str, Any]:
    from veil.adapters.node.files import present, read_text

    path = node_dir / "private" / STATE
    if not present(path):
        return {}
    try:
        data = json.loads(read_text(path))
    except ValueError:
        raise VeilError(f"{path} is damaged", hint="make a new one: veil renewal create") from None
    return data if isinstance(data, dict) else {}


def save_state(node_dir: Path, state: dict[str, Any]) -> None:
    from veil.adapters.node.files import write_private

    write_private(node_dir / "private" / STATE, json.dumps(state, indent=1))


async def publish_listing(client: Client, root: Any, pointer: Any) -> tuple[Any, int]:
    from veil.services.checker import check
    from veil.services.renewal import listing

    caps = await listing.collect(client.directories(), root)
    pointer, _ = await listing.publish(client.uploader(), client.mutable_files(), pointer, caps)
    # the friend cannot place the pointer's shares anew: make it whole while we can
    await check(client, pointer, repair=True)
    return pointer, len(caps)


async def refresh_all(client: Client, node_dir: Path, names: list[str] | None = None) -> int:
    """Publish a new verify-cap list for each renewal cap (``names``: all); backups
    call this after each snapshot so friends renew it too. Returns objects listed."""
    from veil.formats import mutable_caps as mc

    state = load_state(node_dir)
    total = 0
    for name in names if names is not None else sorted(state):
        entry = state.get(name)
        if not isinstance(entry, dict):
            raise UsageError(f"no renewal cap named {name!r}", hint="veil renewal create first")
        root, pointer = mc.parse_user_cap(entry["root"]), mc.parse_ssk(entry["pointer"])
        if not isinstance(root, mc.DirCap) or not isinstance(pointer, mc.SSKWriteCap):
            raise VeilError(f"{node_dir / 'private' / STATE} is damaged")
        total += (await publish_listing(client, root, pointer))[1]
    return total


async def after_backup_refresh(client: Client, node_dir: Path) -> str | None:
    """Refresh every renewal cap of the node after a backup; a warning line when
    that failed (the snapshot is made all the same), None when done or when the
    node has no renewal caps."""
    try:
        if not load_state(node_dir):
            return None
        await refresh_all(client, node_dir)
    except VeilError as exc:
        return f"the snapshot is made, but the renewal lists were not refreshed: {exc}"
    return None
