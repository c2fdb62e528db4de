"""``veil check`` and ``veil deep-check``: health of files and trees, as Tahoe prints it.

    veil check CAP|ALIAS:PATH [--verify] [--repair] [--add-lease] [--json]
    veil deep-check CAP|ALIAS:PATH [--verify] [--repair] [--add-lease] [--json] [-v]

The text is Tahoe's (``Summary: …``, ``good-shares: …``, ``done: N objects
checked, …``); ``--json`` prints Tahoe's check (or check-and-repair, or
deep-check) JSON, so scripts written for Tahoe's ``--raw`` output read it.
Exit status: 0 when the check ran (an unhealthy object is a result, as in
Tahoe), 1 when a repair that was asked for failed or a directory could not
be listed. The work is ``veil.services.checker``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from veil.errors import UsageError
from veil.frontends import runtime


def _flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("where", help="a cap, or ALIAS:PATH (a bare path is under tahoe:)")
    p.add_argument("--verify", action="store_true", help="read and check every block")
    p.add_argument("--repair", action="store_true", help="regenerate missing or corrupt shares")
    p.add_argument("--add-lease", action="store_true", help="add or renew a lease on each server")
    p.add_argument("--json", "--raw", action="store_true", help="print Tahoe's JSON results")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="check the health of a file or directory")
    _flags(p)
    p.set_defaults(func=run_check)
    d = sub.add_parser("deep-check", help="check everything reachable from a directory")
    _flags(d)
    d.add_argument("-v", "--verbose", action="store_true", help="one line per object")
    d.set_defaults(func=run_deep_check)


async def resolve(where: str, node_dir: Path) -> Any:
    """The cap at ``where`` (a cap, or a path below an alias or a directory cap)."""
    from veil.adapters.node.client_session import open_client
    from veil.formats import mutable_caps as mc
    from veil.frontends.cli import grid_paths

    if where.startswith("URI:") and not where.startswith("URI:DIR2") and "/" not in where:
        return mc.parse_user_cap(where)
    path = grid_paths.parse(where, node_dir, default=True)
    if path is None:
        raise UsageError(f"{where!r} is not a capability or an ALIAS:path")
    if not path.parts:
        return path.root
    async with open_client(node_dir) as client:
        entry = await client.directories().walk(path.root, path.parts)
    return mc.parse_user_cap(entry.rw_cap or entry.ro_cap or "")


def _print_one(data: dict[str, Any], repair: bool) -> None:
    out = sys.stdout
    if repair:
        cr = data.get("pre-repair-results", {}).get("results", {"healthy": True})
        out.write(f"Summary: {'healthy' if cr.get('healthy') else 'not healthy'}\n")
    else:
        cr = data["results"]
        out.write(f"Summary: {data.get('summary', 'Healthy (LIT)')}\n")
    out.write(f" storage index: {data['storage-index']}\n")
    if "count-shares-good" in cr:
        out.write(
            f" good-shares: {cr['count-shares-good']} (encoding is "
            f"{cr['count-shares-needed']}-of-{cr['count-shares-expected']})\n"
        )
        out.write(f" wrong-shares: {cr['count-wrong-shares']}\n")
    corrupt = cr.get("list-corrupt-shares", [])
    if corrupt:
        out.write(" corrupt shares:\n")
        for server, si, shnum in corrupt:
            out.write(f"  server {server}, SI {si}, shnum {shnum}\n")
    if repair and data.get("repair-attempted"):
        out.write(" repair successful\n" if data["repair-successful"] else " repair failed\n")


async def _check(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.services.checker import check

    node_dir = Path(args.node_directory)
    cap = await resolve(args.where, node_dir)
    async with open_client(node_dir) as client:
        report = await check(
            client, cap, verify=args.verify, repair=args.repair, add_lease=args.add_lease
        )
    data = report.to_tahoe_json()
    if args.json:
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        _print_one(data, args.repair)
    if report.repair_attempted and not report.repair_successful:
        from veil.errors import VeilError

        raise VeilError(
            "the repair did not make it healthy"
            + (f": {report.repair_problem}" if report.repair_problem else ""),
            hint="start more storage servers, or check which ones are unreachable",
        )
    return 0


async def _deep_check(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.errors import VeilError
    from veil.formats import mutable_caps as mc
    from veil.services.checker.deep import Path as TreePath
    from veil.services.checker.deep import deep_check
    from veil.services.checker.results import CheckReport

    node_dir = Path(args.node_directory)
    cap = await resolve(args.where, node_dir)
    if not isinstance(cap, mc.DirCap):
        raise UsageError("deep-check needs a directory", hint="for one file use: veil check")

    def line(path: TreePath, r: CheckReport) -> None:
        if args.verbose and not args.json:
            shown = "/".join(path) or "<root>"
            summary = r.pre.summary.lower() if r.pre.healthy else r.pre.summary
            sys.stdout.write(f"{shown}: {summary}\n")

    async with open_client(node_dir) as client:
        report = await deep_check(
            client,
            cap,
            verify=args.verify,
            repair=args.repair,
            add_lease=args.add_lease,
            progress=line,
        )
    data = report.to_tahoe_json()
    if args.json:
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        sys.stdout.write(deep_check_text(data))
    if report.unlistable:
        raise VeilError(
            f"{len(report.unlistable)} directory(ies) could not be listed, so what is below "
            "them was not checked",
            hint="run veil check on them to see why",
        )
    if args.repair and data["count-repairs-unsuccessful"]:
        raise VeilError(f"{data['count-repairs-unsuccessful']} repair(s) failed")
    return 0


def run_check(args: argparse.Namespace) -> int:
    return runtime.run(_check(args))


def run_deep_check(args: argparse.Namespace) -> int:
    return runtime.run(_deep_check(args))


def deep_check_text(data: dict[str, Any], renewed: int | None = None) -> str:
    """Tahoe's text for a deep check (with repair when the results have its
    post-repair counts); ``renewed``: the leases a ``veil renew`` renewed."""
    leases = f", {renewed} leases renewed" if renewed is not None else ""
    head = f"done: {data['count-objects-checked']} objects checked{leases}"
    if "count-objects-unhealthy-post-repair" not in data:
        return (
            f"{head}, {data['count-objects-healthy']} healthy, "
            f"{data['count-objects-unhealthy']} unhealthy\n"
        )
    return (
        f"{head}\n"
        f" pre-repair: {data['count-objects-healthy-pre-repair']} healthy, "
        f"{data['count-objects-unhealthy-pre-repair']} unhealthy\n"
        f" {data['count-repairs-attempted']} repairs attempted, "
        f"{data['count-repairs-successful']} successful, "
        f"{data['count-repairs-unsuccessful']} failed\n"
        f" post-repair: {data['count-objects-healthy-post-repair']} healthy, "
        f"{data['count-objects-unhealthy-post-repair']} unhealthy\n"
    )
