"""``veil put FILE|- [WRITECAP]``: upload a file and print its cap.

Immutable (CHK) by default; ``--mutable`` (or ``--format=SDMF``) makes a new
mutable file and prints its write cap; a write cap as second argument replaces
that mutable file's contents (``--offset``: writes into an MDMF file in place).
How each kind of local file is read (pipes, devices, /proc files) is
``local_files.open_input``. Limits are checked before anything is read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from veil.errors import UsageError
from veil.frontends import runtime
from veil.frontends.progress import Progress

MAX_MUTABLE = 64 * 1024 * 1024  # SDMF keeps a whole version in memory


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("put", help="upload a file and print its read cap")
    p.add_argument("file", help="the file to upload, or - for standard input")
    p.add_argument(
        "target",
        nargs="?",
        help="ALIAS:path to link the file at, or a mutable file's write cap to replace",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-m", "--mutable", action="store_true", help="make a mutable file (SDMF)")
    p.add_argument(
        "--format",
        choices=("CHK", "SDMF", "MDMF", "chk", "sdmf", "mdmf"),
        default=None,
        help="CHK (immutable, default), SDMF or MDMF (mutable; MDMF allows in-place updates)",
    )
    p.add_argument(
        "--offset",
        type=int,
        default=None,
        help="with an MDMF write cap: write the data at this byte offset, in place",
    )
    p.set_defaults(func=runtime.LoopCommand(_put))


def _mutable_data(args: argparse.Namespace, room: int) -> bytes:
    """The bytes of a mutable write, refused (before reading far) past the limit."""
    from veil.frontends.cli.local_files import read_at_most

    data = read_at_most(args.file, room)
    if data is None:
        at = f" at offset {args.offset}" if args.offset else ""
        raise UsageError(
            f"mutable files are limited to {MAX_MUTABLE // 2**20} MiB in this version; "
            f"this write{at} would go past that",
            hint="upload large files as immutable (without --mutable)",
        )
    return data


def _check_offset(args: argparse.Namespace) -> int:
    """Room left below the mutable limit for a write at ``--offset``, checked before
    anything is read or allocated."""
    if args.offset is None:
        return MAX_MUTABLE
    if not args.target or not args.target.startswith(("URI:SSK", "URI:MDMF")):
        raise UsageError(
            "--offset writes into an existing MDMF file: give its write cap as the target",
            hint="veil put --offset N FILE URI:MDMF:…",
        )
    if args.offset < 0:
        raise UsageError("--offset must not be negative")
    offset: int = args.offset
    if offset >= MAX_MUTABLE:
        raise UsageError(
            f"--offset is past the {MAX_MUTABLE // 2**20} MiB limit of mutable files "
            "in this version"
        )
    return MAX_MUTABLE - offset


async def _put_at(args: argparse.Namespace, path: Any, fmt: str) -> int:
    """Upload, then link the new file at a grid path (replacing what was there)."""
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths
    from veil.frontends.cli.local_files import open_input
    from veil.services.directories import entry_for

    if not path.parts:  # before anything is read
        raise UsageError(
            f"{path.shown} is a directory; name the new file inside it",
            hint="veil put FILE ALIAS:NAME (or DIRCAP/NAME)",
        )
    async with open_client(Path(args.node_directory)) as client:
        if args.mutable or fmt in ("SDMF", "MDMF"):
            data = await asyncio.to_thread(_mutable_data, args, MAX_MUTABLE)
            files = client.mutable_files()
            made = await (files.mdmf().create(data) if fmt == "MDMF" else files.create(data))
            cap = made.to_string()
        else:
            f, size = open_input(args.file)
            with f:
                cap = (await client.uploader().upload_file(f, size)).cap.to_string()
        await grid_paths.link(client.directories(), path, entry_for(cap))
    sys.stdout.write(cap + "\n")
    return 0


async def _put_mutable(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.formats.mutable_caps import SSKWriteCap, parse_user_cap

    fmt = (args.format or "SDMF").upper()
    room = _check_offset(args)
    target = parse_user_cap(args.target) if args.target else None
    if target is not None and not isinstance(target, SSKWriteCap):
        raise UsageError("the second argument must be a mutable file's write cap (URI:SSK:/MDMF:)")
    if args.offset is not None and target is not None and not target.mdmf:
        raise UsageError("--offset needs an MDMF file (SDMF files are rewritten whole)")
    data = await asyncio.to_thread(_mutable_data, args, room)
    async with open_client(Path(args.node_directory)) as client:
        files = client.mutable_files()
        if target is None:
            made = await (files.mdmf().create(data) if fmt == "MDMF" else files.create(data))
            cap = made.to_string()
        elif args.offset is not None:
            await files.mdmf().update(target, args.offset, data)
            cap = target.to_string()
        else:
            await files.overwrite(target, data)
            cap = target.to_string()
    if args.json:
        sys.stdout.write(json.dumps({"cap": cap, "size": len(data)}, indent=1) + "\n")
    else:
        sys.stdout.write(cap + "\n")
    return 0


async def _put(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths

    fmt = (args.format or "").upper()
    _check_offset(args)
    path = None
    if args.target and not args.target.startswith(("URI:SSK", "URI:MDMF")):
        path = grid_paths.parse(args.target, Path(args.node_directory))
        if path is None:
            raise UsageError(f"{args.target!r} is neither ALIAS:path nor a write cap")
    if path is not None:
        return await _put_at(args, path, fmt)
    if args.mutable or args.target or fmt in ("SDMF", "MDMF"):
        if fmt == "CHK":
            raise UsageError("--format=CHK makes an immutable file; it cannot be --mutable")
        return await _put_mutable(args)
    from veil.frontends.cli.local_files import open_input

    async with open_client(Path(args.node_directory)) as client:  # checks the node first
        f, size = open_input(args.file)
        with f:
            progress = Progress(size, "uploading")
            result = await client.uploader(progress=progress.advance).upload_file(f, size)
            progress.finish()
    cap = result.cap.to_string()
    if args.json:
        out = {
            "cap": cap,
            "size": size,
            "happiness": result.happiness,
            "placements": {str(k): v for k, v in result.placements.items()},
        }
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
    else:
        sys.stdout.write(cap + "\n")
    return 0
