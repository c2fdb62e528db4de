"""The ``veil`` command: argument parsing and the one place errors are rendered.

Each command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``. A ``VeilError`` becomes ``veil: error: <message>`` (and
``hint: …``) with exit status 1; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from veil import __version__
from veil.errors import VeilError
from veil.frontends.cli import caps, config, create_node, fs, get, grid, put, run_node, status

COMMANDS = (create_node, run_node, put, get, status, grid, config, caps, fs)

EXIT_USAGE = 2
EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veil",
        description="A least-authority file store that speaks Tahoe-LAFS.",
        epilog="Exit status: 0 success, 1 error, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"veil {__version__}")
    parser.add_argument(
        "-d",
        "--node-directory",
        default=os.environ.get("VEIL_NODE_DIRECTORY", os.path.expanduser("~/.veil")),
        help="the client node directory (default: $VEIL_NODE_DIRECTORY or ~/.veil)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except VeilError as exc:
        sys.stderr.write(f"veil: error: {exc}\n")
        if exc.hint:
            sys.stderr.write(f"hint: {exc.hint}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("veil: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:  # a file the user named cannot be read or written
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"veil: error: {exc.strerror or exc}{where}\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
