"""``veil put FILE|-``: upload an immutable file and print its read cap."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from veil.frontends import runtime
from veil.frontends.progress import Progress

SPOOL_IN_MEMORY = 64 * 1024 * 1024


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("put", help="upload a file and print its read cap")
    p.add_argument("file", help="the file to upload, or - for standard input")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _spool_stdin() -> tuple[BinaryIO, int]:
    """Standard input is read once into a spooled temporary file (convergence needs
    two passes); small inputs stay in memory."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    try:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)
    return spool, size  # type: ignore[return-value]


async def _put(args: argparse.Namespace) -> int:
    from veil.adapters.client import open_client

    async with open_client(Path(args.node_directory)) as client:  # checks the node first
        if args.file == "-":
            f, size = _spool_stdin()
        else:
            f = open(Path(args.file), "rb")  # noqa: SIM115
            size = os.fstat(f.fileno()).st_size
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


def run(args: argparse.Namespace) -> int:
    return runtime.run(_put(args))
