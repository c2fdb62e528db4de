"""``veil create-node DIR``: make a node directory with fresh secrets."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from veil.errors import UsageError, VeilError

if TYPE_CHECKING:  # imported when a command runs: start-up stays fast
    from veil.adapters.node.nodedir import NodeDirectory

DEFAULT_ONION_PORT = 3457  # as veil.formats.tor_settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name in ("create-node", "create-client"):
        _add(sub, name)
    p = sub.add_parser("create-introducer", help="create an introducer node directory")
    p.add_argument("directory", nargs="?", help="where to create it (default: -d)")
    p.add_argument("--nickname", default="", help="a name for the introducer")
    p.add_argument(
        "--port", type=int, default=0, help="introducer listening port (0: a free one, kept)"
    )
    p.add_argument("--hostname", default="127.0.0.1", help="address announced to nodes")
    _add_tor_options(p)
    p.set_defaults(func=run_introducer)


def _add_tor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--listen",
        default=None,
        help="how others reach this node: tcp, tor (an onion service), i2p (an I2P "
        "destination), a comma-separated mix such as tor,i2p, or none "
        "(default: tcp, or tor with --hide-ip)",
    )
    p.add_argument(
        "--hide-ip",
        action="store_true",
        help="never reveal this node's IP address: connect only through Tor or I2P",
    )
    p.add_argument(
        "--networks",
        default=None,
        help="the anonymity networks this node connects through: tor, i2p or tor,i2p "
        "(default: those named in --listen, else tor)",
    )
    p.add_argument(
        "--i2p-sam-port",
        default=None,
        help="the I2P router's SAM bridge (default tcp:127.0.0.1:7656)",
    )
    p.add_argument(
        "--tor-control-port",
        default=None,
        help="Tor's control port for the onion service (default: found at start, "
        "e.g. TOR_CONTROL_PORT, /var/run/tor/control, 9051)",
    )


def _add(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    client_only = name == "create-client"
    what = "a client node (no storage)" if client_only else "a storage and client node"
    p = sub.add_parser(name, help=f"create {what} directory")
    p.set_defaults(client_only=client_only)
    p.add_argument("directory", nargs="?", help="where to create it (default: -d)")
    p.add_argument("--nickname", default="", help="a name shown to other nodes (default: none)")
    p.add_argument("--no-storage", action="store_true", help="client only: store no shares")
    p.add_argument(
        "--port", type=int, default=0, help="storage listening port (0: a free one, kept)"
    )
    p.add_argument("--hostname", default="127.0.0.1", help="address announced to clients")
    p.add_argument("--location", default=None, help="announced address: tcp:HOST:PORT or HOST")
    p.add_argument("--webport", default=None, help="web gateway, e.g. tcp:3456:interface=127.0.0.1")
    _add_tor_options(p)
    p.add_argument(
        "--introducer", default=None, help="an introducer's NURL (from its private/introducer.furl)"
    )
    p.add_argument("--shares-needed", type=int, default=3, help="k (default 3)")
    p.add_argument("--shares-happy", type=int, default=7, help="happy (default 7)")
    p.add_argument("--shares-total", type=int, default=10, help="N (default 10)")
    p.set_defaults(func=run)


def _location(args: argparse.Namespace) -> tuple[str, int]:
    """(hostname, port) from --location (Tahoe's tcp:HOST:PORT form, or HOST) and --port."""
    from veil.formats.nurl import hint_host, is_anonymous_host, normalize_hint

    if args.location is None:
        return args.hostname, args.port
    text = normalize_hint(args.location).removeprefix("tcp:")  # TCP:, X.ONION. too
    if text.startswith(("tor:", "i2p:")) or is_anonymous_host(hint_host(text)):
        raise UsageError("tor and i2p locations are not yet available in this version of veil")
    host, _, port = text.partition(":")
    if not host or (port and not port.isdigit()):
        raise UsageError(f"--location {args.location!r} must look like tcp:HOST:PORT or HOST")
    return host, int(port) if port else args.port


def _listen(args: argparse.Namespace) -> set[str]:
    """The --listen choices, checked against --hide-ip before anything is written."""
    default = "none" if getattr(args, "client_only", False) else "tor" if args.hide_ip else "tcp"
    text = args.listen or default
    chosen = {w.strip() for w in text.split(",") if w.strip()}
    unknown = chosen - {"tcp", "tor", "i2p", "none"}
    if unknown or not chosen or ("none" in chosen and len(chosen) > 1):
        raise UsageError(f"--listen={text}: choose tcp, tor, i2p, a mix such as tor,i2p, or none")
    if args.hide_ip and "tcp" in chosen:
        raise UsageError(
            "--listen=tcp would publish this node's IP address, which --hide-ip forbids",
            hint="use --listen=tor (an onion service), --listen=i2p or --listen=none",
        )
    webport = getattr(args, "webport", None)
    if args.hide_ip and webport and webport != "none" and "interface=127.0.0.1" not in webport:
        raise UsageError(
            f"--webport={webport} would listen on every network interface",
            hint="add :interface=127.0.0.1, e.g. --webport=tcp:3456:interface=127.0.0.1",
        )
    chosen.discard("none")
    return chosen


def _write_network(node: NodeDirectory, args: argparse.Namespace, listen: set[str]) -> None:
    """[node]/[connections]/[tor] for --hide-ip and --listen=tor. The onion key is
    made here, so the address is known (and announced) before the first run."""
    from veil.adapters.node.nodedir import NodeDirectory, write_private
    from veil.formats.onion import OnionKey
    from veil.formats.tor_settings import parse_endpoint

    networks = _networks(args, listen)
    if args.hide_ip:
        node.config["node"]["reveal-IP-address"] = "false"
        node.config["connections"] = {"tcp": "tor" if "tor" in networks else "disabled"}
    if "i2p" in networks or "i2p" in listen:
        _write_i2p(node, args, listen)
    if args.hide_ip and "tor" not in networks:
        node.config["tor"] = {"enabled": "false"}
    if "tor" in listen:
        tor = {
            "onion": "true",
            "onion.external_port": str(DEFAULT_ONION_PORT),
            "onion.private_key_file": "private/tor_onion.privkey",
        }
        if args.tor_control_port:
            parse_endpoint(args.tor_control_port)
            tor["control.port"] = args.tor_control_port
        node.config["tor"] = tor
        key = OnionKey.from_seed(os.urandom(32))
        write_private(node.private / "tor_onion.privkey", key.to_blob() + "\n")
        hints = [f"tor:{key.address}:{DEFAULT_ONION_PORT}"]
        for section in ("storage", "introducer"):
            host = node.config.get(section, "hostname", fallback=None)
            if "tcp" in listen and host and node.config.getboolean(section, "enabled"):
                hints.insert(0, f"tcp:{host}:{node.config.get(section, 'port')}")
        node.config["node"]["tub.location"] = ",".join(hints)
    if "i2p" in listen:
        i2p_hint = node.config["i2p"].pop("_hint")
        location = node.config["node"].get("tub.location", "")
        node.config["node"]["tub.location"] = ",".join(filter(None, [location, i2p_hint]))
    node.save_config()
    NodeDirectory(node.path).require_network_allowed()  # what we wrote must pass


def _networks(args: argparse.Namespace, listen: set[str]) -> set[str]:
    """The anonymity networks to connect through (--networks, or from --listen)."""
    if args.networks is None:
        named = listen & {"tor", "i2p"}
        return named or {"tor"}
    chosen = {w.strip() for w in args.networks.split(",") if w.strip()}
    if not chosen or chosen - {"tor", "i2p"}:
        raise UsageError(f"--networks={args.networks}: choose tor, i2p or tor,i2p")
    if "tor" in listen and "tor" not in chosen:
        raise UsageError("--listen=tor needs Tor: add tor to --networks")
    return chosen


def _write_i2p(node: NodeDirectory, args: argparse.Namespace, listen: set[str]) -> None:
    """[i2p] for --networks=i2p and --listen=i2p. The destination key is made
    by the router's SAM bridge now, so the address is announced from the start."""
    import asyncio

    from veil.adapters.net.sam_client import generate_destination
    from veil.adapters.node.nodedir import write_private
    from veil.errors import ConfigError
    from veil.formats import sam
    from veil.formats.i2p_settings import DEFAULT_DEST_PORT, DEFAULT_KEY_FILE
    from veil.formats.tor_settings import parse_endpoint

    i2p = {"enabled": "true"}
    if args.i2p_sam_port:
        parse_endpoint(args.i2p_sam_port)
        i2p["sam.port"] = args.i2p_sam_port
    if "i2p" in listen:
        endpoint = parse_endpoint(args.i2p_sam_port or "tcp:127.0.0.1:7656")
        try:
            key = asyncio.run(generate_destination(endpoint))
        except VeilError as exc:
            raise ConfigError(
                f"--listen=i2p needs a running I2P router to make the destination: {exc}",
                hint="start i2pd (SAM on 127.0.0.1:7656) or give --i2p-sam-port, remove "
                f"{node.path} and create it again",
            ) from None
        write_private(node.private / "i2p_dest.privkey", key + "\n")
        address = sam.b32_address(sam.destination_of_private_key(key))
        i2p.update(
            {
                "dest": "true",
                "dest.port": str(DEFAULT_DEST_PORT),
                "dest.private_key_file": DEFAULT_KEY_FILE,
                "_hint": f"i2p:{address}:{DEFAULT_DEST_PORT}",
            }
        )
    node.config["i2p"] = i2p


def run(args: argparse.Namespace) -> int:
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.formats.nurl import parse_nurl
    from veil.formats.params import EncodingParameters

    path = Path(args.directory or args.node_directory)
    params = EncodingParameters(args.shares_needed, args.shares_happy, args.shares_total)
    listen = _listen(args)
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
        storage=not (args.no_storage or args.client_only or not listen),
        port=port,
        hostname=host if "tcp" in listen else None,
        params=params,
    )
    _write_network(node, args, listen)
    extra = {}
    if args.webport:
        extra["web.port"] = args.webport
    if extra:
        node.config["node"].update(extra)
        node.save_config()
    if args.introducer:
        node.add_introducer("default", args.introducer)
    sys.stdout.write(f"created node {node.node_id()} in {path}\n")
    return 0


def run_introducer(args: argparse.Namespace) -> int:
    from veil.adapters.node.nodedir import NodeDirectory

    path = Path(args.directory or args.node_directory)
    listen = _listen(args)
    if not listen:
        raise UsageError("an introducer must listen: --listen=tcp, tor, i2p or a mix")
    from veil.adapters.node.creation import free_port
    from veil.formats.config_schema import is_host

    if "tcp" in listen and not is_host(args.hostname):
        raise UsageError(f"--hostname {args.hostname!r} is not a host name or an IP address")
    node = NodeDirectory.create(path, nickname=args.nickname, storage=False, hostname=None)
    port = args.port or free_port(args.hostname if "tcp" in listen else "127.0.0.1")
    node.config["introducer"] = {"enabled": "true", "port": str(port)}
    if "tcp" in listen:
        node.config["introducer"]["hostname"] = args.hostname
    _write_network(node, args, listen)
    sys.stdout.write(
        f"created introducer in {path}; after 'veil run {path}', its address is in "
        f"{path / 'private' / 'introducer.furl'}\n"
    )
    return 0
