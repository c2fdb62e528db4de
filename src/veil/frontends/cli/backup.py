"""``veil backup``, ``restore``, ``snapshots`` and ``forget``: backups in Tahoe's layout.

``backup LOCALDIR ALIAS:PATH`` makes ``PATH/Archives/<UTC time>`` and
``PATH/Latest`` as ``tahoe backup`` 1.20 does, skipping what the backup
database (``private/backupdb.sqlite``) knows unchanged. ``restore`` gives a
snapshot back with modes, times, links and (as root) owners; ``snapshots``
lists them; ``forget`` unlinks old ones by restic's rules. Exit status: 0
done, 1 failed, 3 done but something was skipped (listed). docs/backup.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.errors import UsageError, VeilError
from veil.frontends import runtime

if TYPE_CHECKING:
    from veil.frontends.cli.backup_report import Reporter
    from veil.frontends.cli.grid_paths import GridPath
    from veil.services.backup.metadata import Excluder

EXIT_PARTIAL = 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backup",
        help="back up a directory as a new snapshot under ALIAS:PATH/Archives",
        epilog="Exit status: 0 done, 1 failed, 3 done but some files were skipped.",
    )
    p.add_argument("local", metavar="LOCALDIR")
    p.add_argument("target", metavar="ALIAS:PATH")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave out names matching this glob (repeatable)",
    )
    p.add_argument(
        "--exclude-from-utf-8",
        dest="exclude_from",
        action="append",
        default=[],
        metavar="FILE",
        help="leave out names matching the globs in FILE",
    )
    p.add_argument(
        "--exclude-vcs",
        action="store_true",
        help="leave out version-control files (.git, .svn, CVS, ...)",
    )
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("-j", "--jobs", type=int, help="files in flight (default 128)")
    p.set_defaults(func=_cmd(_backup))
    from veil.frontends.cli import backup_restore

    backup_restore.add_parsers(sub)


def _cmd(fn: Any) -> runtime.LoopCommand:
    """With ``--json`` a failure is a JSON error line (restic's way)."""

    async def guarded(args: argparse.Namespace) -> int:
        if not getattr(args, "json", False):
            return int(await fn(args))
        from veil.frontends.cli.backup_report import Reporter

        try:
            return int(await fn(args))
        except VeilError as exc:
            Reporter("", as_json=True).emit("error", message=str(exc), hint=exc.hint)
            return 1

    return runtime.LoopCommand(guarded)


def grid_target(arg: str, node: Path) -> GridPath:
    from veil.frontends.cli import grid_paths

    path = grid_paths.parse(arg, node)
    if path is None:
        raise UsageError(
            f"{arg!r} is not a grid path", hint="write it as ALIAS:PATH, e.g. tahoe:backups"
        )
    return path


def build_excluder(args: argparse.Namespace) -> Excluder:
    from veil.services.backup.metadata import VCS_PATTERNS, Excluder, read_exclude_lines

    patterns = list(args.exclude)
    for name in args.exclude_from:
        try:
            patterns += read_exclude_lines(Path(name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the exclude file {name}: {exc}") from None
    if args.exclude_vcs:
        patterns += VCS_PATTERNS
    return Excluder(patterns)


def reporter(verb: str, args: argparse.Namespace, totals: tuple[int, int] | None) -> Reporter:
    from veil.frontends.cli.backup_report import Reporter

    files, size = totals if totals else (None, None)
    return Reporter(verb, as_json=args.json, total_files=files, total_bytes=size)


async def _backup(args: argparse.Namespace) -> int:
    from veil.adapters.node.backupdb import BackupDB
    from veil.adapters.node.client_session import open_client
    from veil.adapters.node.node_backup import make_snapshot
    from veil.adapters.node.recovery_state import refuse_read_only
    from veil.frontends.cli.backup_report import scan_totals
    from veil.services.backup.backup_run import BackupRun

    node = Path(args.node_directory)
    local = Path(args.local)
    target = grid_target(args.target, node)
    excluder = build_excluder(args)
    refuse_read_only(node, args.target)
    if not local.is_dir():
        raise UsageError(f"{local} is not a directory", hint="veil backup LOCALDIR ALIAS:PATH")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    live = args.json or sys.stderr.isatty()
    report = reporter("backup", args, scan_totals(local, excluder) if live else None)
    with BackupDB.of_node(node) as db:
        async with open_client(node) as client:
            run = BackupRun(
                client.uploader(),
                client.directories(),
                db,
                excluder=excluder,
                **({} if args.jobs is None else {"slots": args.jobs}),
                on_file=report.file,
                on_warning=report.warning,
            )
            made = await make_snapshot(
                client,
                node,
                run,
                local,
                (target.root, target.parts),
                args.target,
                excluder.patterns,
            )
    for line in made.warnings:
        report.warning(line)
    name, s = made.name, made.summary
    text = (
        f"{name}: {s.files_new} files uploaded ({s.files_unchanged} unchanged), "
        f"{s.symlinks} links, {len(s.skipped) + len(s.unreadable)} skipped, "
        f"{s.dirs_new} directories created ({s.dirs_unchanged} unchanged), "
        f"{s.bytes_new} of {s.bytes_total} bytes uploaded"
    )
    report.summary(text, snapshot=name, **s.as_json())
    return EXIT_PARTIAL if s.skipped or s.unreadable else 0
