"""Grid paths on the command line: ``alias:dir/file`` or ``URI:DIR2…/dir/file``.

``parse`` returns the root directory cap and the path below it, or None for
a local path (no alias prefix). ``link``/``unlink`` change the directory that
holds the last path element; ``refuse_move_into_itself`` keeps ``mv`` from
orphaning a tree. Messages name a path by ``GridPath.shown``: an alias path
as typed, a cap path with the cap described (``veil.formats.cap_display``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from veil.adapters.node.aliases import Aliases
from veil.errors import UsageError
from veil.formats import cap_display
from veil.formats import mutable_caps as mc
from veil.formats.dirnode import Entry, normalize
from veil.services.directories import Directories, linked

DEFAULT_ALIAS = "tahoe"


@dataclass(frozen=True)
class GridPath:
    root: mc.DirCap
    parts: list[str]
    text: str

    @property
    def shown(self) -> str:
        """The path for messages: a cap in it is described, never shown."""
        return cap_display.scrub(self.text)

    @property
    def parent(self) -> GridPath:
        if not self.parts:
            raise UsageError(
                f"{self.shown} is a root directory; it has no parent",
                hint="name something inside it: DIRECTORY/NAME",
            )
        return GridPath(self.root, self.parts[:-1], self.text)

    @property
    def name(self) -> str:
        if not self.parts:
            raise UsageError(f"{self.shown} names no file inside the directory")
        return self.parts[-1]


def _dir(text: str) -> mc.DirCap:
    cap = mc.parse_user_cap(text)
    if not isinstance(cap, mc.DirCap):
        raise UsageError(
            f"{cap_display.describe(cap)} is a file cap, not a directory",
            hint="directory caps start with URI:DIR2",
        )
    return cap


def parse(arg: str, node_dir: Path, *, default: bool = False) -> GridPath | None:
    """``alias:path``, ``CAP/path``, or (with ``default``) a bare path under ``tahoe:``."""
    if arg.startswith("URI:"):
        cap_text, _, rest = arg.partition("/")
        return GridPath(_dir(cap_text), [p for p in rest.split("/") if p], arg)
    alias, sep, rest = arg.partition(":")
    if not sep or "/" in alias:
        if not default:
            return None
        alias, rest = DEFAULT_ALIAS, arg
    aliases = Aliases(node_dir).load()
    if alias not in aliases:
        known = ", ".join(sorted(aliases)) or "none yet"
        raise UsageError(
            f"unknown alias {alias!r} (known: {known})",
            hint="make one with: veil create-alias NAME",
        )
    return GridPath(_dir(aliases[alias]), [p for p in rest.split("/") if p], arg)


async def directory_at(dirs: Directories, path: GridPath) -> mc.DirCap:
    entry = await dirs.walk(path.root, path.parts)
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if not isinstance(cap, mc.DirCap):
        raise UsageError(f"{path.shown} is a file, not a directory")
    return cap


async def link(dirs: Directories, path: GridPath, entry: Entry, *, replace: bool = True) -> None:
    """Put ``entry`` at ``path`` (its parent directory must exist)."""
    parent = await directory_at(dirs, path.parent)
    name = path.name

    def change(children: dict[str, Entry]) -> dict[str, Entry]:
        if not replace and name in children:
            raise UsageError(f"{path.shown} already exists")
        children[name] = linked(entry, children.get(name))
        return children

    await dirs.modify(parent, change)


async def unlink(dirs: Directories, path: GridPath) -> Entry:
    parent = await directory_at(dirs, path.parent)
    removed: list[Entry] = []

    def change(children: dict[str, Entry]) -> dict[str, Entry]:
        if path.name not in children:
            raise UsageError(f"no such file or directory: {path.shown}")
        removed.append(children.pop(path.name))
        return children

    await dirs.modify(parent, change)
    return removed[-1]


async def refuse_move_into_itself(
    dirs: Directories, source: GridPath, target: GridPath, entry: Entry
) -> None:
    """``mv`` of a directory into itself or below would orphan it, and ``mv`` of a
    link onto itself would remove it: refuse both before anything changes.
    Directories are compared by storage index, so another alias or cap for the
    same directory is caught too."""
    source_si = cap_display.storage_index(mc.parse_any(entry.rw_cap or entry.ro_cap or ""))
    source_parent = cap_display.storage_index(await directory_at(dirs, source.parent))
    target_parent = await directory_at(dirs, target.parent)
    if source_parent == cap_display.storage_index(target_parent) and normalize(
        source.name
    ) == normalize(target.name):
        raise UsageError(f"{source.shown} and {target.shown} are the same link; nothing to move")
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if not isinstance(cap, mc.DirCap) or source_si is None:
        return
    here: mc.DirCap = target.root
    for depth in range(len(target.parts)):
        if cap_display.storage_index(here) == source_si:
            raise UsageError(
                f"cannot move {source.shown} into itself ({target.shown} is inside it)"
            )
        if depth == len(target.parts) - 1:
            break
        above = GridPath(target.root, target.parts[: depth + 1], target.text)
        here = await directory_at(dirs, above)
