"""``veil get CAP [FILE|-]``: download a file (or a byte range of it)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from veil.errors import UsageError
from veil.formats.caps import parse_read_cap
from veil.frontends import runtime
from veil.frontends.progress import Progress


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("get", help="download a file given its read cap")
    p.add_argument("cap", help="a read cap: URI:CHK:, URI:LIT:, or a mutable URI:SSK(-RO):")
    p.add_argument("file", nargs="?", default="-", help="where to write (default: stdout)")
    p.add_argument("--offset", type=int, default=0, help="first byte to fetch")
    p.add_argument("--length", type=int, default=None, help="number of bytes to fetch")
    p.set_defaults(func=run)


async def _resolve(args: argparse.Namespace) -> str:
    """The file cap at a grid path (``ALIAS:path``)."""
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths

    path = grid_paths.parse(args.cap, Path(args.node_directory))
    if path is None or not path.parts:
        raise UsageError(f"{args.cap!r} is not a capability or an ALIAS:path to a file")
    async with open_client(Path(args.node_directory)) as client:
        entry = await client.directories().walk(path.root, path.parts)
    return entry.rw_cap or entry.ro_cap or ""


async def _get_mutable(args: argparse.Namespace, cap: Any) -> int:
    from veil.adapters.node.client_session import open_client

    async with open_client(Path(args.node_directory)) as client:
        data = await client.mutable_files().read(cap)
    end = None if args.length is None else args.offset + args.length
    data = data[args.offset : end]
    if args.file == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    target = Path(args.file)
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, target)
    return 0


async def _get(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client

    if args.offset < 0 or (args.length is not None and args.length < 0):
        raise UsageError("--offset and --length must not be negative")
    if not args.cap.startswith("URI:") or args.cap.startswith("URI:DIR2"):
        args.cap = await _resolve(args)
    from veil.formats.mutable_caps import DirCap, SSKReadCap, SSKWriteCap, parse_any

    mutable = parse_any(args.cap)
    if isinstance(mutable, DirCap):
        raise UsageError(
            "that is a directory, not a file", hint="list it with veil ls, copy it with veil cp -r"
        )
    if isinstance(mutable, SSKWriteCap | SSKReadCap):
        return await _get_mutable(args, mutable)
    cap = parse_read_cap(args.cap)
    if args.offset < 0 or (args.length is not None and args.length < 0):
        raise UsageError("--offset and --length must not be negative")
    to_stdout = args.file == "-"
    target = Path(args.file)
    if not to_stdout and not target.parent.is_dir():
        raise UsageError(f"cannot write {target}: the directory {target.parent} does not exist")
    partial = target.with_name(target.name + ".part")
    out = sys.stdout.buffer if to_stdout else open(partial, "wb")  # noqa: SIM115
    wanted = cap.size - args.offset if args.length is None else args.length
    progress = Progress(max(0, min(wanted, cap.size - args.offset)), "downloading")
    try:
        async with open_client(Path(args.node_directory)) as client:
            writing: asyncio.Future[int] | None = None
            async for chunk in client.downloader().stream(cap, args.offset, args.length):
                if writing is not None:
                    await writing  # one write in flight: memory stays bounded
                writing = asyncio.ensure_future(asyncio.to_thread(out.write, chunk))
                progress.advance(len(chunk))
            if writing is not None:
                await writing
        out.flush()
    except BaseException:
        if not to_stdout:
            out.close()
            partial.unlink(missing_ok=True)  # never leave a file that looks complete
        raise
    finally:
        progress.finish()
    if not to_stdout:
        os.fsync(out.fileno())
        out.close()
        os.replace(partial, target)
    return 0


def run(args: argparse.Namespace) -> int:
    return runtime.run(_get(args))
