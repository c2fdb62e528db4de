"""``veil restore``, ``snapshots`` and ``forget``: the rest of ``cli.backup``.

``restore ALIAS:PATH[/Archives/TIME] TARGET`` (``Latest`` by default) into an
empty directory, or into one an unfinished restore left (a rerun restores
only what is missing or different), or anywhere with ``--overwrite``.
``snapshots ALIAS:PATH`` lists the history; ``forget`` unlinks snapshots that
restic's ``--keep-*`` rules do not keep (``--dry-run`` only says which).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from veil.errors import UsageError

if TYPE_CHECKING:
    from veil.adapters.node.client_session import Client
    from veil.formats import mutable_caps as mc
    from veil.formats.dirnode import Entry


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from veil.frontends.cli.backup import _cmd

    p = sub.add_parser(
        "restore",
        help="restore a snapshot (default: Latest) into a local directory",
        epilog="Exit status: 0 done, 1 failed, 3 done but some entries were skipped "
        "or could not be given their owners.",
    )
    p.add_argument("source", metavar="ALIAS:PATH[/Archives/TIME]")
    p.add_argument("target", metavar="TARGET")
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="restore only paths (or names) matching this glob (repeatable)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="restore into a non-empty directory, replacing what differs",
    )
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("-j", "--jobs", type=int, help="files in flight (default 128)")
    p.set_defaults(func=_cmd(_restore))
    p = sub.add_parser("snapshots", help="list the snapshots of a backup")
    p.add_argument("path", metavar="ALIAS:PATH")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd(_snapshots))
    p = sub.add_parser("forget", help="unlink old snapshots (restic's --keep-* rules)")
    p.add_argument("path", metavar="ALIAS:PATH")
    for what in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        p.add_argument(f"--keep-{what}", type=int, default=0, metavar="N")
    p.add_argument("--keep-within", default="", metavar="DURATION", help="e.g. 7d, 2m, 1y")
    p.add_argument("--dry-run", action="store_true", help="only say what would go")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd(_forget))


def _totals(entry: Entry) -> tuple[int, int] | None:
    """Files and bytes of a snapshot, from the ``veil`` metadata of its link."""
    stats = entry.metadata.get("veil")
    if isinstance(stats, dict):
        files, size = stats.get("files"), stats.get("bytes_total")
        if isinstance(files, int) and isinstance(size, int):
            return files, size
    return None


async def _snapshot_of(
    client: Client, source: str, node: Path
) -> tuple[mc.DirCap, str, tuple[int, int] | None]:
    """The snapshot's dir cap for ``source`` (a backup's ``Latest`` when it names
    a backup), how to call it, and its files and bytes when its link says."""
    from veil.formats import mutable_caps as mc
    from veil.frontends.cli.backup import grid_target
    from veil.services.backup.snapshots import LATEST

    path = grid_target(source, node)
    dirs = client.directories()
    entry = await dirs.walk(path.root, path.parts)
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if not isinstance(cap, mc.DirCap):
        raise UsageError(f"{path.shown} is a file, not a snapshot")
    children = await dirs.children(cap)
    if LATEST in children:
        latest = mc.parse_any(children[LATEST].ro_cap or "")
        if isinstance(latest, mc.DirCap):
            return latest, f"{source.rstrip('/')}/{LATEST}", _totals(children[LATEST])
    return cap, source, _totals(entry)


async def _restore(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli.backup import EXIT_PARTIAL, reporter
    from veil.services.backup.restore_run import RestoreRun, finish_target, prepare_target

    node = Path(args.node_directory)
    target = Path(os.path.abspath(args.target))
    prepare_target(target, overwrite=args.overwrite)
    async with open_client(node) as client:
        snapshot, shown, totals = await _snapshot_of(client, args.source, node)
        report = reporter("restore", args, None if args.include else totals)
        run = RestoreRun(
            client.directories(),
            client.downloader(),
            include=args.include,
            **({} if args.jobs is None else {"slots": max(args.jobs, 1)}),
            on_file=report.file,
            on_warning=report.warning,
        )
        s = await run.run(snapshot, target)
    if not s.foreign:  # else the rerun as root is let in without --overwrite
        finish_target(target)
    if s.foreign:
        again = shlex.join(
            [
                "sudo",
                "veil",
                "-d",
                str(node.resolve()),
                "restore",
                args.source,
                str(target),
                *(f"--include={i}" for i in args.include),
            ]
        )
        report.warning(
            f"{len(s.foreign)} entries belong to other users and were restored as yours "
            f"(e.g. {s.foreign[0]}); to give them their owners run: {again}"
        )
    text = (
        f"restored {shown}: {s.files_written} files written ({s.files_kept} unchanged, "
        f"{s.fixed} metadata fixed), {s.links} links, {s.dirs} directories, "
        f"{s.bytes_written} bytes, {len(s.skipped)} skipped"
    )
    report.summary(text, **s.as_json())
    return EXIT_PARTIAL if s.skipped or s.foreign else 0


async def _snapshots(args: argparse.Namespace) -> int:
    import json

    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli.backup import grid_target
    from veil.frontends.cli.grid_paths import directory_at
    from veil.services.backup.snapshots import LATEST, list_snapshots

    node = Path(args.node_directory)
    path = grid_target(args.path, node)
    async with open_client(node) as client:
        dirs = client.directories()
        base = await directory_at(dirs, path)
        found = await list_snapshots(dirs, base)
        latest = (await dirs.children(base)).get(LATEST)
    latest_cap = latest.ro_cap if latest else None
    if args.json:
        rows = [{**s.as_json(), "latest": s.cap.to_string() == latest_cap} for s in found]
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return 0
    if not found:  # made by a first backup that has not finished (or by Tahoe's)
        sys.stderr.write(f"no snapshots yet under {path.shown}\n")
    for s in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.time))
        mark = "  (Latest)" if s.cap.to_string() == latest_cap else ""
        sys.stdout.write(f"{s.name}  {when}  {s.files} files  {s.bytes} bytes{mark}\n")
    return 0


async def _forget(args: argparse.Namespace) -> int:
    import json

    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli.backup import grid_target
    from veil.frontends.cli.grid_paths import directory_at
    from veil.services.backup.retention import Policy, choose, parse_duration
    from veil.services.backup.snapshots import list_snapshots, unlink

    policy = Policy(
        args.keep_last,
        args.keep_hourly,
        args.keep_daily,
        args.keep_weekly,
        args.keep_monthly,
        args.keep_yearly,
        parse_duration(args.keep_within) if args.keep_within else 0.0,
    )
    if policy.empty:
        raise UsageError(
            "no --keep-* rule given: forget would remove every snapshot",
            hint="e.g. veil forget ALIAS:PATH --keep-daily 7 --keep-weekly 4",
        )
    node = Path(args.node_directory)
    path = grid_target(args.path, node)
    async with open_client(node) as client:
        dirs = client.directories()
        base = await directory_at(dirs, path)
        found = await list_snapshots(dirs, base, count=False)
        keep = choose([(s.name, s.time) for s in found], policy)
        gone = [s.name for s in found if s.name not in keep]
        if gone and not args.dry_run:
            await unlink(dirs, base, gone)
    if args.json:
        doc = {"keep": keep, "remove": gone, "dry_run": args.dry_run}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return 0
    for s in found:
        if s.name in keep:
            sys.stdout.write(f"keep    {s.name}  ({', '.join(keep[s.name])})\n")
        else:
            sys.stdout.write(f"{'would remove' if args.dry_run else 'remove'}  {s.name}\n")
    return 0
