"""What a client knows about its storage servers, for ``veil status`` and the web page.

Each call asks every server for its version once, in parallel (nothing polls
on a timer), and remembers when each was last seen in
``NODEDIR/server-status.json``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from veil.adapters.node.client_session import Client
from veil.errors import VeilError

TIMEOUT = 10.0


def _address(server: Any, show: bool) -> str:
    host = server.nurl.host
    if host.endswith(".onion") and not show:
        return "(onion address hidden)"
    if host.endswith(".i2p") and not show:
        return "(i2p address hidden)"
    return f"{host}:{server.nurl.port}"


async def server_rows(client: Client, *, show_addresses: bool = False) -> list[dict[str, Any]]:
    """One row per server; onion addresses only with ``show_addresses``."""
    memory_file = client.node.path / "server-status.json"
    try:
        last_seen: dict[str, float] = json.loads(memory_file.read_text())
    except (OSError, ValueError):
        last_seen = {}

    async def ask(server: Any) -> dict[str, Any]:
        ann = client.announcements.get(server.server_id, {})
        row: dict[str, Any] = {
            "server_id": server.server_id,
            "nickname": ann.get("nickname", ""),
            "via": getattr(server, "via", "tcp"),
            "address": _address(server, show_addresses),
        }
        start = time.monotonic()
        try:
            v = await asyncio.wait_for(client.broker.version_of(server), TIMEOUT)
        except (VeilError, TimeoutError) as exc:
            client.broker.forget_version(server.server_id)
            row.update(connected=False, error=str(exc) or "timed out")
        else:
            last_seen[server.server_id] = time.time()
            row.update(
                connected=True,
                version=v.application_version.decode("utf-8", "replace"),
                available_space=v.available_space,
                round_trip_ms=round((time.monotonic() - start) * 1000, 1),
            )
        row["last_seen"] = last_seen.get(server.server_id)
        return row

    rows = list(await asyncio.gather(*(ask(s) for s in client.broker.servers)))
    memory_file.write_text(json.dumps(last_seen))
    return rows


def storage_figures(node_dir: Path) -> dict[str, Any] | None:
    """This node's own storage server: what it holds and what lease expiry freed
    (written by ``veil.adapters.node.lease_expiry`` after each pass), and per
    account (``accounts``: name, shares, bytes, quota; read live from the lease
    index, ``veil.adapters.node.accounts``), or None."""
    from veil.adapters.node.accounts import account_figures_of
    from veil.adapters.node.lease_expiry import STATUS_FILE
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.adapters.storage.lease_index import FILENAME as INDEX_FILE
    from veil.adapters.storage.lease_index import read_totals

    try:
        node = NodeDirectory(node_dir)
        figures = json.loads((node.storage_dir() / STATUS_FILE).read_text())
    except (OSError, ValueError, VeilError):
        return None
    if not isinstance(figures, dict):
        return None
    # what is held now, from the index (the status file is written once per pass)
    totals = read_totals(node.storage_dir() / INDEX_FILE)
    if totals is not None:
        figures.update(
            {"shares-held": totals.shares, "bytes-held": totals.bytes, "leases-held": totals.leases}
        )
    try:
        accounts = account_figures_of(node)
    except VeilError:  # a damaged accounts file: the figures without names
        accounts = None
    if accounts is not None:
        figures["accounts"] = accounts
    return figures


def welcome_json(
    rows: list[dict[str, Any]],
    introducers: dict[str, str],
    *,
    storage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The same facts in the shape of Tahoe's welcome page (``GET /?t=json``);
    ``storage`` (``storage_figures``) adds this node's own server's figures."""
    out = {
        "introducers": {"statuses": [f"configured: {name}" for name in sorted(introducers)]},
        "servers": [
            {
                "nodeid": r["server_id"],
                "connection_status": "connected" if r["connected"] else "disconnected",
                "available_space": r.get("available_space"),
                "nickname": r["nickname"],
                "version": r.get("version"),
                "last_received_data": r["last_seen"],
            }
            for r in rows
        ],
    }
    if storage is not None:
        out["storage"] = storage
    return out
