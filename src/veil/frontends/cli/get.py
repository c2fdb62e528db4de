"""``veil get CAP [FILE|-]``: download a file (or a byte range of it).

Where the bytes go, and why a FIFO or a device is written into rather than
replaced, is ``local_files.open_output``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.errors import UsageError
from veil.formats.caps import parse_read_cap
from veil.frontends import runtime
from veil.frontends.progress import Progress

if TYPE_CHECKING:  # imported when the command runs: start-up stays fast
    from veil.frontends.cli.local_files import Output


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("get", help="download a file given its read cap")
    p.add_argument("cap", help="a read cap: URI:CHK:, URI:LIT:, or a mutable URI:SSK(-RO):")
    p.add_argument("file", nargs="?", default="-", help="where to write (default: stdout)")
    p.add_argument("--offset", type=int, default=0, help="first byte to fetch")
    p.add_argument("--length", type=int, default=None, help="number of bytes to fetch")
    p.set_defaults(func=runtime.LoopCommand(_get))


async def _resolve(args: argparse.Namespace) -> str:
    """The file cap at a grid path (``ALIAS:path``)."""
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths

    path = grid_paths.parse(args.cap, Path(args.node_directory))
    if path is None:
        raise UsageError(f"{args.cap!r} is not a capability or an ALIAS:path to a file")
    if not path.parts:
        raise UsageError(
            f"{path.shown} is a directory, not a file",
            hint="list it with veil ls, copy it with veil cp -r",
        )
    async with open_client(Path(args.node_directory)) as client:
        entry = await client.directories().walk(path.root, path.parts)
    return entry.rw_cap or entry.ro_cap or ""


async def _get_mutable(args: argparse.Namespace, cap: Any, out: Output) -> int:
    from veil.adapters.node.client_session import open_client

    async with open_client(Path(args.node_directory)) as client:
        data = await client.mutable_files().read(cap)
    end = None if args.length is None else args.offset + args.length
    await asyncio.to_thread(out.file.write, data[args.offset : end])
    return 0


async def _get_immutable(args: argparse.Namespace, cap: Any, out: Output) -> int:
    from veil.adapters.node.client_session import open_client

    wanted = cap.size - args.offset if args.length is None else args.length
    progress = Progress(max(0, min(wanted, cap.size - args.offset)), "downloading")
    try:
        async with open_client(Path(args.node_directory)) as client:
            writing: asyncio.Future[int] | None = None
            async for chunk in client.downloader().stream(cap, args.offset, args.length):
                if writing is not None:
                    await writing  # one write in flight: memory stays bounded
                writing = asyncio.ensure_future(asyncio.to_thread(out.file.write, chunk))
                progress.advance(len(chunk))
            if writing is not None:
                await writing
    finally:
        progress.finish()
    return 0


async def _get(args: argparse.Namespace) -> int:
    if args.offset < 0 or (args.length is not None and args.length < 0):
        raise UsageError("--offset and --length must not be negative")
    if not args.cap.startswith("URI:") or args.cap.startswith("URI:DIR2"):
        args.cap = await _resolve(args)
    from veil.formats.mutable_caps import DirCap, SSKReadCap, SSKWriteCap, parse_any

    parsed = parse_any(args.cap)
    if isinstance(parsed, DirCap):
        raise UsageError(
            "that is a directory, not a file", hint="list it with veil ls, copy it with veil cp -r"
        )
    cap = parsed if isinstance(parsed, SSKWriteCap | SSKReadCap) else parse_read_cap(args.cap)
    from veil.frontends.cli.local_files import open_output

    out = open_output(args.file)  # a FIFO waits here for its reader
    try:
        if isinstance(cap, SSKWriteCap | SSKReadCap):
            await _get_mutable(args, cap, out)
        else:
            await _get_immutable(args, cap, out)
    except BaseException:
        out.abort()
        raise
    await asyncio.to_thread(out.commit)  # the fsync: not on a node's event loop
    return 0
