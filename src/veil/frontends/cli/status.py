"""``veil status``: which servers a client can reach, their versions and free space.

Asks every server in ``private/servers.yaml`` for its version once, in
parallel (no polling), and remembers when each was last seen in
``NODEDIR/server-status.json``. ``--json`` prints the same facts as data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from veil.frontends import runtime

TIMEOUT = 10.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show the servers this client can reach")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


async def _status(node_dir: Path) -> list[dict[str, Any]]:
    from veil.adapters.client import open_client
    from veil.errors import VeilError

    memory_file = node_dir / "server-status.json"
    try:
        last_seen: dict[str, float] = json.loads(memory_file.read_text())
    except (OSError, ValueError):
        last_seen = {}
    async with open_client(node_dir) as client:
        announcements = client.announcements
        servers = client.broker.servers

        async def ask(server: Any) -> dict[str, Any]:
            ann = announcements.get(server.server_id, {})
            row: dict[str, Any] = {
                "server_id": server.server_id,
                "nickname": ann.get("nickname", ""),
                "via": "tcp",
                "address": f"{server.nurl.host}:{server.nurl.port}",
            }
            start = time.monotonic()
            try:
                v = await asyncio.wait_for(server.get_version(), TIMEOUT)
            except (VeilError, TimeoutError) as exc:
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

        rows = list(await asyncio.gather(*(ask(s) for s in servers)))
    memory_file.write_text(json.dumps(last_seen))
    return rows


def _ago(ts: float | None) -> str:
    if ts is None:
        return "never"
    seconds = max(0, int(time.time() - ts))
    return "just now" if seconds < 5 else f"{seconds} s ago"


def run(args: argparse.Namespace) -> int:
    rows = runtime.run(_status(Path(args.node_directory)))
    if args.json:
        sys.stdout.write(json.dumps({"servers": rows}, indent=1) + "\n")
        return 0
    up = sum(1 for r in rows if r["connected"])
    sys.stdout.write(f"connected to {up} of {len(rows)} storage servers\n")
    for r in sorted(rows, key=lambda r: r["nickname"]):
        name = f"{r['nickname'] or '-':<14} {r['server_id'][:16]}  {r['via']} {r['address']}"
        if r["connected"]:
            space = r["available_space"] / 1e9
            sys.stdout.write(
                f"  up    {name}  {r['version']}  {space:.1f} GB free  {r['round_trip_ms']} ms\n"
            )
        else:
            sys.stdout.write(f"  DOWN  {name}  last seen {_ago(r['last_seen'])}: {r['error']}\n")
    return 0
