"""``veil run DIR``: run a storage node in the foreground until SIGTERM/SIGINT.

Serves Tahoe's HTTP storage protocol over HTTPS from the node's disk backend,
then writes ``announcement.yaml`` (the node's id and the ``ann`` entry a
client puts in its ``servers.yaml``). Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from veil import __version__
from veil.errors import ConfigError
from veil.frontends import runtime


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a node in the foreground")
    p.add_argument("directory", nargs="?", help="the node directory (default: -d)")
    p.set_defaults(func=run)


async def _serve(path: Path) -> int:
    from veil.adapters.node.running import StorageNode

    log = logging.getLogger("veil")
    node = StorageNode(path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before start: a stop while starting is clean
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except BaseException:
        await node.stop()  # withdraw whatever was started (an onion service, listeners)
        raise
    from veil.frontends.cli.command_server import CommandServer

    server = CommandServer(path)  # private/cli.sock: the CLI's commands run here
    commands: CommandServer | None = server
    try:
        await server.start()
    except OSError as exc:
        log.warning("not serving CLI commands (%s): they run in their own processes", exc)
        commands = None
    log.info("veil %s node %s running: %s", __version__, node.server_id, node.describe())
    await stop.wait()
    log.info("shutting down")
    if commands is not None:
        await commands.stop()
    await node.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    from veil.frontends.cli.main import ScrubbingFormatter  # no cap or key in any log line

    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[console])
    path = Path(args.directory or args.node_directory)
    if not (path / "tahoe.cfg").exists():
        raise ConfigError(f"{path} is not a node directory", hint="veil create-node DIR")
    (path / "logs").mkdir(exist_ok=True)
    handler = logging.FileHandler(path / "logs" / "node.log")
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    return runtime.run(_serve(path))
