"""The ``veil`` command: argument parsing and the one place errors are rendered.

Each command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``. A ``VeilError`` becomes ``veil: error: <message>`` (and
``hint: …``) with exit status 1; anything else is a bug and keeps its
traceback. Every line written here (also argparse's usage errors, which echo
what was typed) goes through ``cap_display.scrub`` first: messages name caps
through ``veil.formats.cap_display``, and this is the second line of defence.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from veil import __version__
from veil.errors import VeilError
from veil.formats.cap_display import scrub
from veil.frontends.cli import (
    account,
    backup,
    caps,
    check,
    config,
    create_node,
    fs,
    get,
    grid,
    put,
    recovery,
    relay,
    renewal,
    run_node,
    status,
    webopen,
)

COMMANDS = (
    create_node,
    run_node,
    put,
    get,
    status,
    grid,
    config,
    caps,
    fs,
    backup,
    webopen,
    relay,
    recovery,
    check,
    renewal,
    account,
)

EXIT_USAGE = 2
EXIT_ERROR = 1


class _Parser(argparse.ArgumentParser):
    """argparse, with its error line (which quotes the bad argument) scrubbed."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {scrub(message)}\n")


class ScrubbingFormatter(logging.Formatter):
    """Log lines scrubbed like messages (``veil run`` logs through this)."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def _say(line: str) -> None:
    sys.stderr.write(scrub(line) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


def _no_system_ca_store() -> None:
    """veil pins every certificate by its SPKI hash and never consults the system's
    CA store, but aiohttp loads it twice when it is first imported (~0.1 s per
    command). Importing aiohttp with OpenSSL's own variables pointed at nothing
    skips that; the user's values are put back for anything run later."""
    saved = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    os.environ.update(dict.fromkeys(saved, os.devnull))
    try:
        import aiohttp.connector  # noqa: F401
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def render_failure(exc: BaseException) -> int | None:
    """Say what went wrong in one line (and a hint) on stderr; the exit status,
    or None for a bug, which keeps its traceback. The command server of a
    running node renders its commands' failures here too."""
    if isinstance(exc, VeilError):
        _say(f"veil: error: {exc}")
        if exc.hint:
            _say(f"hint: {exc.hint}")
        return EXIT_ERROR
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("veil: interrupted\n")
        return 130
    if isinstance(exc, BrokenPipeError):
        return EXIT_ERROR
    if isinstance(exc, OSError):  # a file the user named cannot be read or written
        where = f": {exc.filename}" if exc.filename else ""
        _say(f"veil: error: {exc.strerror or exc}{where}")
        return EXIT_ERROR
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _no_system_ca_store()
    try:
        code: int = args.func(args)
        return code
    except (VeilError, KeyboardInterrupt, OSError) as exc:
        failed = render_failure(exc)
        if failed is None:
            raise
        return failed


if __name__ == "__main__":
    sys.exit(main())
