"""``veil account``: accounts on a storage node, one per friend, with quotas.

    veil account add NAME [--quota SIZE] [--servers-yaml]   prints the friend's NURL
    veil account list [--json]                              names, shares, bytes, quotas
    veil account set-quota NAME|anonymous SIZE|none         0 refuses new shares
    veil account remove NAME                                its swissnum stops working

Run on the storage node (``-d`` its directory); a running server picks the
changes up at its next request. ``add`` prints the only copy of the account's
secret: its NURL (the server's address and pin, the account's swissnum), for
the friend's ``private/servers.yaml``; ``--servers-yaml`` prints the whole
entry, with the fURL Tahoe 1.20 clients also need. Nothing else ever prints a
swissnum. The files are ``veil.adapters.node.accounts``; the counting and the
quota rules ``veil.services.storage.accounts``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from veil.errors import UsageError, VeilError

if TYPE_CHECKING:
    from veil.adapters.node.nodedir import NodeDirectory


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("account", help="accounts and quotas on this storage server")
    asub = p.add_subparsers(dest="account_command", metavar="ACTION")
    asub.required = True
    a = asub.add_parser("add", help="make an account and print its NURL for the friend")
    a.add_argument("name", help="what to call it (not secret): 1-40 of a-z 0-9 . _ -")
    a.add_argument("--quota", help="most it may store: 10G, 500M, ... (default: no quota)")
    a.add_argument(
        "--servers-yaml", action="store_true", help="print a whole servers.yaml for the friend"
    )
    a.set_defaults(func=run_add)
    s = asub.add_parser("list", help="the accounts, what each holds and its quota")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=run_list)
    q = asub.add_parser("set-quota", help="change an account's quota (or anonymous's)")
    q.add_argument("name", help="an account, or anonymous (the announced swissnum)")
    q.add_argument("quota", help="10G, 500M, 0 (refuse new shares) or none")
    q.set_defaults(func=run_set_quota)
    r = asub.add_parser("remove", help="remove an account: its NURL stops working")
    r.add_argument("name")
    r.set_defaults(func=run_remove)


def _node(args: argparse.Namespace) -> NodeDirectory:
    from veil.adapters.node.nodedir import NodeDirectory

    node = NodeDirectory(Path(args.node_directory))
    if not node.storage_settings().enabled:
        raise UsageError(
            f"{node.path} runs no storage server ([storage] enabled = false)",
            hint="run veil account on the storage node, with -d its directory",
        )
    return node


def _quota(text: str | None) -> int | None:
    from veil.adapters.node.nodedir import parse_size

    if text is None or text.strip().lower() in ("none", "unlimited"):
        return None
    try:
        quota = parse_size(text, key="quota")
    except VeilError:
        raise UsageError(
            f"{text[:40]!r} is not a size", hint="examples: 10G, 500M, 0, none"
        ) from None
    if quota < 0:
        raise UsageError("a quota cannot be negative")
    return quota


def run_add(args: argparse.Namespace) -> int:
    from veil.adapters.node.accounts import (
        account_nurls,
        editing,
        new_account,
        servers_entry,
    )

    node = _node(args)
    quota = _quota(args.quota)
    with editing(node) as accounts:
        account = new_account(accounts, args.name, quota)
        # built before saving: an account whose NURL cannot be made is not kept
        out = (
            yaml.safe_dump(servers_entry(node, account.swissnum), sort_keys=True)
            if args.servers_yaml
            else "".join(u + "\n" for u in account_nurls(node, account.swissnum))
        )
        if not out.strip():
            raise UsageError("this server announces no NURL yet; start it once (veil run)")
    sys.stdout.write(out)
    sys.stderr.write(
        f"account {account.name!r} made; give the friend the "
        + ("servers.yaml above" if args.servers_yaml else "NURL above")
        + " (it is its only copy: keep it secret), for their private/servers.yaml\n"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    from veil.adapters.node.accounts import FILENAME, account_figures_of, load
    from veil.services.storage.accounts import Usage, account_figures, show_size

    node = _node(args)
    figures = account_figures_of(node)
    counted = figures is not None
    if figures is None:  # no lease index yet (the server never ran): names and quotas
        figures = account_figures(load(node.private / FILENAME).limits(), dict[int, Usage]())
    if args.json:
        sys.stdout.write(json.dumps({"accounts": figures, "counted": counted}, indent=1) + "\n")
        return 0
    for a in figures:
        quota = "no quota" if a["quota"] is None else f"quota {show_size(a['quota'])}"
        held = f"{a['shares']:>7} shares {show_size(a['bytes']):>10}" if counted else "not counted"
        sys.stdout.write(f"{a['name']:<20} {held}  {quota}\n")
    if not counted:
        sys.stdout.write("(no lease index yet: run the server once to count)\n")
    return 0


def run_set_quota(args: argparse.Namespace) -> int:
    from veil.adapters.node.accounts import editing

    node = _node(args)
    quota = _quota(args.quota)
    with editing(node) as accounts:
        if args.name == "anonymous":
            accounts.anonymous_quota = quota
        else:
            old = accounts.get(args.name)
            accounts.accounts[args.name] = dataclasses.replace(old, quota=quota)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from veil.adapters.node.accounts import editing

    node = _node(args)
    with editing(node) as accounts:
        accounts.get(args.name)
        del accounts.accounts[args.name]
    sys.stderr.write(
        f"account {args.name!r} removed; the shares it stored stay until their leases expire\n"
    )
    return 0
