"""``veil status``: which servers a client can reach, their versions and free space.

Asks every known server (static and introduced) for its version once, in
parallel (no polling); see ``veil.adapters.node.server_status``. Run against a
storage node's directory it also shows what that server holds, per account
(``veil account``). ``--json`` prints the same facts as data.
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


def _held(figures: dict[str, Any]) -> None:
    from veil.services.storage.accounts import show_size

    held = figures.get("bytes-held", 0)
    sys.stdout.write(
        f"this storage server holds {figures.get('shares-held', 0)} shares, {show_size(held)}\n"
    )
    for a in figures.get("accounts", []):
        quota = "no quota" if a["quota"] is None else f"quota {show_size(a['quota'])}"
        sys.stdout.write(
            f"  account {a['name']:<16} {a['shares']:>7} shares {show_size(a['bytes']):>10}"
            f"  {quota}\n"
        )


def run(args: argparse.Namespace) -> int:
    from veil.adapters.node.server_status import storage_figures

    node_dir = Path(args.node_directory)
    rows = runtime.run(_status(node_dir, args.show_addresses))
    figures = storage_figures(node_dir)
    if args.json:
        doc: dict[str, Any] = {"servers": rows}
        if figures is not None:
            doc["storage"] = figures
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
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
    if figures is not None:
        _held(figures)
    return 0
