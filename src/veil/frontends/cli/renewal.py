"""``veil renewal create|refresh`` (the owner) and ``veil renew`` (the friend).

    veil renewal create ALIAS:PATH [--name NAME]   prints a renewal cap
    veil renewal refresh [--name NAME]             a new verify-cap list (after a backup)
    veil renew RENEWAL-CAP|--cap-file FILE [--verify] [--no-repair] [--json]

The owner's side keeps, per name, the tree's root, the pointer's write cap
and the renewal secret in ``private/renewals.json`` (0600); ``create`` also
renews every lease once under the new secret, so the friend's care starts at
once. The friend's node caches the last list in ``private/renewal-cache/``;
``renew --keep`` also has ``veil run`` renew it on a schedule
(``veil.adapters.node.renewal_task``).
``renew`` exits 1 when an object stays unhealthy (a mutable one cannot be
placed anew without its write cap: docs/durability.md). The work is
``veil.services.renewal``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from veil.adapters.node.renewal_state import (
    load_state,
    publish_listing,
    refresh_all,
    save_state,
)
from veil.errors import UsageError, VeilError
from veil.frontends import runtime

if TYPE_CHECKING:
    pass


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("renewal", help="let a friend keep a tree alive (renewal caps)")
    rsub = p.add_subparsers(dest="renewal_command", metavar="ACTION")
    rsub.required = True
    c = rsub.add_parser("create", help="make a renewal cap for a tree")
    c.add_argument("where", help="ALIAS:PATH or a directory cap (the backup alias, say)")
    c.add_argument("--name", default="default", help="name it is kept under (default: default)")
    c.set_defaults(func=run_create)
    r = rsub.add_parser("refresh", help="publish a new verify-cap list (after a backup)")
    r.add_argument("--name", default="default")
    r.add_argument("--all", action="store_true", help="every renewal cap this node made")
    r.set_defaults(func=run_refresh)
    n = sub.add_parser("renew", help="renew, check and repair a tree from its renewal cap")
    n.add_argument("cap", nargs="?", help="the renewal cap (or use --cap-file)")
    n.add_argument("--cap-file", help="read the renewal cap from this file")
    n.add_argument("--verify", action="store_true", help="read and check every block")
    n.add_argument("--no-repair", action="store_true", help="renew and check only")
    n.add_argument("--json", action="store_true", help="Tahoe's deep-check JSON")
    n.add_argument(
        "--keep", action="store_true", help="also renew it from now on whenever veil run runs"
    )
    n.add_argument("--every", help="with --keep: how often (default 6 hours; e.g. 12 hours)")
    n.set_defaults(func=run_renew)


async def _create(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.formats import mutable_caps as mc
    from veil.frontends.cli.check import resolve
    from veil.services.renewal.cap import RenewalCap
    from veil.services.renewal.renew import RenewalSession, renew

    node_dir = Path(args.node_directory)
    root = await resolve(args.where, node_dir)
    if not isinstance(root, mc.DirCap):
        raise UsageError("a renewal cap is made for a directory (the root of a tree)")
    secret = os.urandom(32)
    async with open_client(node_dir) as client:
        pointer, count = await publish_listing(client, root, None)
        cap = RenewalCap(secret, pointer.read_cap(), dict(client.announcements))
        state = load_state(node_dir)
        state[args.name] = {
            "root": root.to_string(),
            "pointer": pointer.to_string(),
            "renewal-cap": cap.to_string(),
        }
        save_state(node_dir, state)
        session = RenewalSession(client.broker, client.params, secret)
        await renew(session, cap, repair=False)
    sys.stderr.write(f"renewal cap for {count} objects (kept as {args.name!r}):\n")
    sys.stdout.write(cap.to_string() + "\n")
    return 0


async def _refresh(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client

    node_dir = Path(args.node_directory)
    async with open_client(node_dir) as client:
        count = await refresh_all(client, node_dir, None if args.all else [args.name])
    sys.stdout.write(f"renewal lists now name {count} objects\n")
    return 0


def _read_cap(args: argparse.Namespace) -> str:
    if args.cap_file:
        try:
            return Path(args.cap_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read {args.cap_file}: {exc.strerror}") from None
    if not args.cap:
        raise UsageError("give the renewal cap, or --cap-file FILE")
    return str(args.cap)


async def _renew(args: argparse.Namespace) -> int:
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.adapters.node.renewal_task import keep, renew_from_node
    from veil.frontends.cli.check import deep_check_text
    from veil.services.renewal.cap import parse_renewal_cap

    cap = parse_renewal_cap(_read_cap(args))
    node_dir = Path(args.node_directory)
    if args.keep:
        try:
            keep(NodeDirectory(node_dir), cap, args.every)
        except ValueError as exc:
            raise UsageError(f"--every: {exc}") from None
    report = await renew_from_node(node_dir, cap, verify=args.verify, repair=not args.no_repair)
    data = report.to_tahoe_json()
    repaired = "count-objects-unhealthy-post-repair" in data  # Tahoe's two shapes
    if args.json:
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        renewed = sum(1 for _, r in report.objects if r.leases_renewed)
        sys.stdout.write(deep_check_text(data, renewed))
    unhealthy = data[
        "count-objects-unhealthy-post-repair" if repaired else "count-objects-unhealthy"
    ]
    if unhealthy:
        raise VeilError(
            f"{unhealthy} object(s) are still unhealthy",
            hint="a mutable object cannot be placed anew without its write cap; "
            "is every server reachable?",
        )
    return 0


def run_create(args: argparse.Namespace) -> int:
    return runtime.run(_create(args))


def run_refresh(args: argparse.Namespace) -> int:
    return runtime.run(_refresh(args))


def run_renew(args: argparse.Namespace) -> int:
    return runtime.run(_renew(args))
