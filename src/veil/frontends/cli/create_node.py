"""``veil create-node DIR``: make a node directory with fresh secrets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from veil.adapters.nodedir import NodeDirectory
from veil.formats.params import EncodingParameters


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name in ("create-node", "create-client"):
        _add(sub, name)
    p = sub.add_parser("create-introducer", help="create an introducer node directory")
    p.add_argument("directory", nargs="?", help="where to create it (default: -d)")
    p.add_argument("--nickname", default="", help="a name for the introducer")
    p.add_argument("--port", type=int, default=0, help="introducer listening port (0: any)")
    p.add_argument("--hostname", default="127.0.0.1", help="address announced to nodes")
    p.set_defaults(func=run_introducer)


def _add(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    client_only = name == "create-client"
    what = "a client node (no storage)" if client_only else "a storage and client node"
    p = sub.add_parser(name, help=f"create {what} directory")
    p.set_defaults(client_only=client_only)
    p.add_argument("directory", nargs="?", help="where to create it (default: -d)")
    p.add_argument("--nickname", default="", help="a name shown to other nodes")
    p.add_argument("--no-storage", action="store_true", help="client only: store no shares")
    p.add_argument("--port", type=int, default=0, help="storage listening port (0: any)")
    p.add_argument("--hostname", default="127.0.0.1", help="address announced to clients")
    p.add_argument(
        "--introducer", default=None, help="an introducer's NURL (from its private/introducer.furl)"
    )
    p.add_argument("--shares-needed", type=int, default=3, help="k (default 3)")
    p.add_argument("--shares-happy", type=int, default=7, help="happy (default 7)")
    p.add_argument("--shares-total", type=int, default=10, help="N (default 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.directory or args.node_directory)
    params = EncodingParameters(args.shares_needed, args.shares_happy, args.shares_total)
    node = NodeDirectory.create(
        path,
        nickname=args.nickname,
        storage=not (args.no_storage or args.client_only),
        port=args.port,
        hostname=args.hostname,
        params=params,
    )
    if args.introducer:
        from veil.adapters.client import introducer_nurl

        introducer_nurl(node, "default", args.introducer)  # refuse a malformed one now
        node.add_introducer("default", args.introducer)
    sys.stdout.write(f"created node {node.node_id()} in {path}\n")
    return 0


def run_introducer(args: argparse.Namespace) -> int:
    path = Path(args.directory or args.node_directory)
    node = NodeDirectory.create(path, nickname=args.nickname, storage=False)
    node.config["introducer"] = {
        "enabled": "true",
        "port": str(args.port),
        "hostname": args.hostname,
    }
    with open(node.config_path, "w", encoding="utf-8") as f:
        node.config.write(f)
    sys.stdout.write(
        f"created introducer in {path}; after 'veil run {path}', its address is in "
        f"{path / 'private' / 'introducer.furl'}\n"
    )
    return 0
