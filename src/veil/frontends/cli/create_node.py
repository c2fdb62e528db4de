"""``veil create-node DIR``: make a node directory with fresh secrets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from veil.adapters.nodedir import NodeDirectory
from veil.errors import UsageError, VeilError
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
    p.add_argument("--location", default=None, help="announced address: tcp:HOST:PORT or HOST")
    p.add_argument("--listen", default="tcp", help="tcp (default), none; tor and i2p come later")
    p.add_argument("--webport", default=None, help="web gateway port, kept for later use")
    p.add_argument(
        "--hide-ip", action="store_true", help="never reveal this node's IP address (needs Tor)"
    )
    p.add_argument(
        "--introducer", default=None, help="an introducer's NURL (from its private/introducer.furl)"
    )
    p.add_argument("--shares-needed", type=int, default=3, help="k (default 3)")
    p.add_argument("--shares-happy", type=int, default=7, help="happy (default 7)")
    p.add_argument("--shares-total", type=int, default=10, help="N (default 10)")
    p.set_defaults(func=run)


def _location(args: argparse.Namespace) -> tuple[str, int]:
    """(hostname, port) from --location (Tahoe's tcp:HOST:PORT form, or HOST) and --port."""
    if args.location is None:
        return args.hostname, args.port
    text = args.location.removeprefix("tcp:")
    if text.startswith(("tor:", "i2p:")) or text.endswith((".onion", ".i2p")):
        raise UsageError("tor and i2p locations are not yet available in this version of veil")
    host, _, port = text.partition(":")
    if not host or (port and not port.isdigit()):
        raise UsageError(f"--location {args.location!r} must look like tcp:HOST:PORT or HOST")
    return host, int(port) if port else args.port


def run(args: argparse.Namespace) -> int:
    from veil.formats.nurl import parse_nurl

    path = Path(args.directory or args.node_directory)
    params = EncodingParameters(args.shares_needed, args.shares_happy, args.shares_total)
    if args.listen not in ("tcp", "none"):
        raise UsageError(
            f"--listen={args.listen} is not yet available; this version offers tcp or none"
        )
    host, port = _location(args)
    if args.introducer:
        try:
            parse_nurl(args.introducer)
        except VeilError:
            raise UsageError(
                f"--introducer {args.introducer[:40]!r} is not an introducer NURL",
                hint="copy it from the introducer's private/introducer.furl",
            ) from None
    node = NodeDirectory.create(
        path,
        nickname=args.nickname,
        storage=not (args.no_storage or args.client_only or args.listen == "none"),
        port=port,
        hostname=host,
        params=params,
    )
    extra = {}
    if args.hide_ip:
        extra["reveal-IP-address"] = "false"
    if args.webport:
        extra["web.port"] = args.webport
    if extra:
        node.config["node"].update(extra)
        with open(node.config_path, "w", encoding="utf-8") as f:
            node.config.write(f)
    if args.introducer:
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
