"""``veil relay``: run a relay for storage servers behind NAT, and join one.

On the relay's machine (docs/relays.md)::

    veil relay create RELAYDIR --listen 0.0.0.0:4430 --public-host relay.example.org
    veil relay add-backend RELAYDIR bob [--port 4431] [--sni bob.relay.example.org]
    veil relay remove-backend RELAYDIR bob
    veil relay run RELAYDIR

``add-backend`` prints the backend's ticket on stdout: it holds the secret
that lets the backend register under its name, so the operator hands it over
privately, as one would a cap. On the storage server's machine::

    veil relay join NODEDIR alice < ticket

reads the ticket from stdin (never from the command line, where ``ps`` and
shell histories would keep it), writes ``private/relays/alice.ticket`` (0600)
and adds ``alice`` to ``[storage] relays``. For a Pagekite frontend the
"ticket" is ``pagekite://KITENAME:PORT`` (the ``pagekite`` backend keeps that
tunnel; veil only announces the address).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from veil.errors import UsageError
from veil.frontends import runtime


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("relay", help="run a relay for servers behind NAT, or join one")
    rsub = p.add_subparsers(dest="relay_command", metavar="ACTION")
    rsub.required = True
    create = rsub.add_parser("create", help="make a relay directory")
    create.add_argument("directory")
    create.add_argument("--listen", default="0.0.0.0:4430", help="HOST:PORT for tunnels and SNI")
    create.add_argument("--public-host", required=True, help="the relay's public name or address")
    create.add_argument("--public-port", type=int, help="if not the listen port (a forwarded port)")
    create.set_defaults(func=run_create)
    add = rsub.add_parser("add-backend", help="admit a storage server; prints its ticket")
    add.add_argument("directory")
    add.add_argument("name", help="the backend's name (a DNS label)")
    add.add_argument("--port", type=int, help="its own port, for clients without SNI (Tahoe 1.20)")
    add.add_argument("--sni", action="append", default=[], help="SNI names routed to it")
    add.set_defaults(func=run_add)
    rm = rsub.add_parser("remove-backend", help="stop admitting a storage server")
    rm.add_argument("directory")
    rm.add_argument("name")
    rm.set_defaults(func=run_remove)
    run = rsub.add_parser("run", help="run the relay in the foreground")
    run.add_argument("directory")
    run.set_defaults(func=run_relay)
    join = rsub.add_parser("join", help="use a relay for this storage node (ticket on stdin)")
    join.add_argument("node", help="the storage node's directory")
    join.add_argument("name", help="what this node calls the relay")
    join.set_defaults(func=run_join)


def run_create(args: argparse.Namespace) -> int:
    from veil.adapters.node.relay_directory import RelayDirectory

    RelayDirectory.create(Path(args.directory), args.listen, args.public_host, args.public_port)
    sys.stdout.write(f"relay directory {args.directory} made; add backends with add-backend\n")
    return 0


def run_add(args: argparse.Namespace) -> int:
    from veil.adapters.node.relay_directory import RelayDirectory

    ticket = RelayDirectory(Path(args.directory)).add_backend(args.name, args.port, args.sni)
    sys.stderr.write(
        f"backend {args.name} admitted; give it this ticket privately "
        f"(it announces {ticket.public_host}:{ticket.public_port}):\n"
    )
    sys.stdout.write(ticket.to_string() + "\n")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from veil.adapters.node.relay_directory import RelayDirectory

    RelayDirectory(Path(args.directory)).remove_backend(args.name)
    sys.stdout.write(f"backend {args.name} removed (a running relay keeps it until restarted)\n")
    return 0


async def _serve(directory: Path) -> int:
    from veil.adapters.net.relay import RelayFrontend
    from veil.adapters.node.relay_directory import RelayDirectory

    relay_dir = RelayDirectory(directory)
    settings = relay_dir.settings()
    backends = relay_dir.backends()
    relay = RelayFrontend(backends, settings.listen_host, settings.listen_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await relay.start()
    log = logging.getLogger("veil")
    own = ", ".join(f"{n} on port {p}" for n, p in sorted(relay.ports.items()))
    log.info(
        "relay on %s:%d for %d backends%s",
        settings.listen_host,
        relay.port,
        len(backends),
        f" ({own})" if own else "",
    )
    try:
        await stop.wait()
    finally:
        await relay.stop()
    return 0


def run_relay(args: argparse.Namespace) -> int:
    from veil.frontends.cli.main import ScrubbingFormatter

    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[console])
    return runtime.run(_serve(Path(args.directory)))


def run_join(args: argparse.Namespace) -> int:
    from veil.adapters.node.files import private_dir, write_private
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.adapters.node.relay_links import relay_names, ticket_path_of
    from veil.formats.relay_protocol import check_name, parse_relay_entry

    check_name(args.name)
    ticket = parse_relay_entry(sys.stdin.readline())
    node = NodeDirectory(Path(args.node))
    names = relay_names(node)
    if args.name in names:
        raise UsageError(f"this node already uses a relay named {args.name!r}")
    path = ticket_path_of(node, args.name)
    private_dir(path.parent)
    write_private(path, ticket.to_string() + "\n")
    from veil.frontends.cli.config import run_set

    value = ", ".join([*names, args.name])
    run_set(argparse.Namespace(key="storage.relays", value=value, node_directory=args.node))
    sys.stdout.write(
        f"this node will keep tunnels to relay {args.name} and announce "
        f"{ticket.public_host}:{ticket.public_port} at its next 'veil run'\n"
    )
    return 0
