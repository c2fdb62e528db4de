"""Filesystem commands on the grid: mkdir, create-alias, ls, rm, mv, ln, cp.

Paths are ``alias:dir/name`` (aliases from ``private/aliases``) or a
directory cap followed by ``/dir/name``. ``cp`` copies between local disk and
the grid either way (``-r`` for directories), keeping modification times in
the entries' metadata (``mtime``) and restoring them on the way down.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.errors import UsageError
from veil.frontends import runtime

if TYPE_CHECKING:  # imported when a command runs: start-up stays fast
    from veil.formats.dirnode import Entry
    from veil.frontends.cli.grid_paths import GridPath


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mkdir", help="make a directory (at PATH, or unlinked: prints its cap)")
    p.add_argument("path", nargs="?")
    p.add_argument(
        "--format",
        choices=("SDMF", "MDMF", "sdmf", "mdmf"),
        default="SDMF",
        help="SDMF (default, as Tahoe) or MDMF",
    )
    p.set_defaults(func=_cmd(_mkdir))
    p = sub.add_parser("create-alias", help="make a new directory and name it")
    p.add_argument("alias")
    p.set_defaults(func=_cmd(_create_alias))
    p = sub.add_parser("ls", help="list a directory")
    p.add_argument("path", nargs="?", default="tahoe:")
    p.add_argument("-l", action="store_true", dest="long", help="sizes, times and kinds")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd(_ls))
    p = sub.add_parser("rm", help="unlink a file or directory from its parent")
    p.add_argument("path")
    p.set_defaults(func=_cmd(_rm))
    for name, what in (("mv", "move (rename) a link"), ("ln", "link the same object again")):
        p = sub.add_parser(name, help=what)
        p.add_argument("source")
        p.add_argument("target")
        p.set_defaults(func=_cmd(_mv if name == "mv" else _ln))
    p = sub.add_parser("cp", help="copy between local disk and the grid")
    p.add_argument("sources", nargs="+")
    p.add_argument("target")
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories")
    p.set_defaults(func=_cmd(_cp))


def _cmd(fn: Any) -> runtime.LoopCommand:
    return runtime.LoopCommand(fn)


def _grid(arg: str, node: Path) -> GridPath:
    from veil.frontends.cli import grid_paths

    path = grid_paths.parse(arg, node)
    if path is None:
        raise UsageError(f"{arg!r} is not a grid path (ALIAS:path, e.g. tahoe:docs/a.txt)")
    return path


async def _mkdir(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths
    from veil.services.directories import entry_for

    node = Path(args.node_directory)
    target = _grid(args.path, node) if args.path else None
    async with open_client(node) as client:
        dirs = client.directories()
        cap = await dirs.create(mdmf=args.format.upper() == "MDMF")
        if target is not None:
            await grid_paths.link(dirs, target, entry_for(cap.to_string()), replace=False)
    sys.stdout.write(cap.to_string() + "\n")
    return 0


async def _create_alias(args: argparse.Namespace) -> int:
    from veil.adapters.node.aliases import Aliases, normalize
    from veil.adapters.node.client_session import open_client

    node = Path(args.node_directory)
    name = normalize(args.alias)
    if name in Aliases(node).load():
        raise UsageError(f"alias {name!r} already exists")
    async with open_client(node) as client:

        async def make() -> str:  # under the alias lock: the name cannot be taken meanwhile
            return (await client.directories().create()).to_string()

        await Aliases(node).create(name, make)
    sys.stdout.write(f"Alias {name!r} created\n")
    return 0


def _kind(entry: Entry) -> str:
    from veil.formats import mutable_caps as mc

    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if isinstance(cap, mc.DirCap):
        return "dir"
    return "mutable" if isinstance(cap, mc.SSKWriteCap | mc.SSKReadCap) else "file"


def _size(entry: Entry) -> int | None:
    from veil.formats import mutable_caps as mc

    cap = mc.parse_any(entry.ro_cap or "")
    return getattr(cap, "size", None)


async def _ls(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths

    node = Path(args.node_directory)
    path = grid_paths.parse(args.path, node, default=True)
    assert path is not None
    async with open_client(node) as client:
        dirs = client.directories()
        children = await dirs.children(await grid_paths.directory_at(dirs, path))
    if args.json:
        out = {
            name: {
                "type": _kind(e),
                "ro_uri": e.ro_cap,
                "rw_uri": e.rw_cap,
                "size": _size(e),
                "metadata": e.metadata,
            }
            for name, e in sorted(children.items())
        }
        sys.stdout.write(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
        return 0
    for name, e in sorted(children.items()):
        if not args.long:
            sys.stdout.write(name + ("/" if _kind(e) == "dir" else "") + "\n")
            continue
        when = e.metadata.get("mtime") or e.metadata.get("tahoe", {}).get("linkmotime")
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else "-"
        size = _size(e)
        shown = "-" if size is None else str(size)
        sys.stdout.write(f"{_kind(e):<8}{shown:>12}  {stamp}  {name}\n")
    return 0


async def _rm(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths

    node = Path(args.node_directory)
    async with open_client(node) as client:
        await grid_paths.unlink(client.directories(), _grid(args.path, node))
    return 0


async def _ln(args: argparse.Namespace, *, move: bool = False) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths

    node = Path(args.node_directory)
    source, target = _grid(args.source, node), _grid(args.target, node)
    async with open_client(node) as client:
        dirs = client.directories()
        entry = await dirs.walk(source.root, source.parts)
        if move:
            await grid_paths.refuse_move_into_itself(dirs, source, target, entry)
        await grid_paths.link(dirs, target, entry)
        if move:
            await grid_paths.unlink(dirs, source)
    return 0


async def _mv(args: argparse.Namespace) -> int:
    return await _ln(args, move=True)


async def _cp(args: argparse.Namespace) -> int:
    from veil.adapters.node.client_session import open_client
    from veil.frontends.cli import grid_paths
    from veil.frontends.cli.copying import copy_down, copy_up

    node = Path(args.node_directory)
    target = grid_paths.parse(args.target, node)
    skipped: list[str] = []
    async with open_client(node) as client:
        for source in args.sources:
            grid_source = grid_paths.parse(source, node)
            if grid_source is None and target is not None:
                await copy_up(
                    client, Path(source), target, recursive=args.recursive, skipped=skipped
                )
            elif grid_source is not None and target is None:
                local = Path(args.target)
                await copy_down(
                    client, grid_source, local, recursive=args.recursive, skipped=skipped
                )
            else:
                raise UsageError("cp copies between local disk and the grid: one side each")
    if skipped:
        raise UsageError(
            f"{len(skipped)} item(s) skipped (see the warnings above); the rest was copied"
        )
    return 0
