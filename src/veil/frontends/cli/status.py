"""``veil status``: which servers a client can reach, their versions and free space.

Asks every known server (static and introduced) for its version once, in
parallel (no polling); see ``veil.adapters.node.server_status``. ``--json`` prints
the same facts as data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from veil.frontends import runtime


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show the servers this client can reach")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--show-addresses",
        action="store_true",
        help="also show onion addresses (hidden by default: they identify anonymous servers)",
    )
    p.set_defaults(func=run)


async def _status(node_dir: Path, show: bool) -> list[dict[str, Any]]:
    from veil.adapters.node.client_session import open_client
    from veil.adapters.node.server_status import server_rows

    async with open_client(node_dir) as client:
        return await server_rows(client, show_addresses=show)


def _ago(ts: float | None) -> str:
    if ts is None:
        return "never"
    seconds = max(0, int(time.time() - ts))
    return "just now" if seconds < 5 else f"{seconds} s ago"


def run(args: argparse.Namespace) -> int:
    rows = runtime.run(_status(Path(args.node_directory), args.show_addresses))
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
