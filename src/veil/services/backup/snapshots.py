"""A backup's history on the grid: ``PATH/Archives/<time>`` and ``PATH/Latest``.

A backup opens its ``History`` first, as ``tahoe backup`` 1.20 does: the
directories ``PATH`` and ``PATH/Archives`` are made when missing (mutable,
as Tahoe's ``t=mkdir``), while the files upload. The finished snapshot is
linked as ``Archives/<UTC time>`` (a later second's name when that one is
taken), then ``Latest`` is pointed at it. Until that first link nothing of
the run is reachable from ``Archives/``: a run killed earlier leaves no
half-made snapshot. ``list_snapshots`` reads the history (counts from the link's
``veil`` metadata, or by walking a snapshot Tahoe made); ``unlink`` removes
snapshots that ``forget`` chose.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from veil.errors import NotFound, UsageError, VeilError
from veil.formats import mutable_caps as mc
from veil.formats.dirnode import Entry
from veil.services.backup.metadata import VEIL_KEY, archive_name, archive_time
from veil.services.directories import Change, Directories, entry_for, linked
from veil.services.mutable.server_map import ServerMap

ARCHIVES, LATEST = "Archives", "Latest"
MAP_FRESH = 120.0  # seconds a history's server maps are reused by its links


@dataclass(frozen=True)
class Snapshot:
    name: str
    time: float
    cap: mc.DirCap
    files: int | None
    bytes: int | None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "time": self.time, "files": self.files, "bytes": self.bytes}


def _dir_of(entry: Entry, what: str) -> mc.DirCap:
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if not isinstance(cap, mc.DirCap):
        raise UsageError(f"{what} is a file, not a directory")
    return cap


def _leads_to(kids: dict[str, Entry], archives: mc.DirCap) -> bool:
    entry = kids.get(ARCHIVES)
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "") if entry is not None else None
    return isinstance(cap, mc.DirCap) and cap.to_string() == archives.to_string()


async def ensure_directory(dirs: Directories, root: mc.DirCap, parts: list[str]) -> mc.DirCap:
    """The directory at ``parts`` below ``root``, made (with its parents) when missing."""
    here = root
    for depth, name in enumerate(parts):
        children = await dirs.children(here)
        if name in children:
            here = _dir_of(children[name], "/".join(parts[: depth + 1]))
            continue
        made = await dirs.create()
        holder: list[Entry] = []

        def add(
            kids: dict[str, Entry],
            name: str = name,
            made: mc.DirCap = made,
            holder: list[Entry] = holder,
        ) -> dict[str, Entry]:
            del holder[:]
            if name in kids:  # made meanwhile by another writer: use theirs
                holder.append(kids[name])
                return kids
            kids[name] = linked(entry_for(made.to_string()), None)
            return kids

        await dirs.modify(here, add)
        here = _dir_of(holder[0], name) if holder else made
    return here


@dataclass(frozen=True)
class History:
    """Where a backup's snapshots go: ``PATH`` and ``PATH/Archives``."""

    base: mc.DirCap
    archives: mc.DirCap
    names: frozenset[str] = frozenset()  # the snapshot names taken when it was opened
    # the whole server maps the two were read from, and when: the links reuse them
    maps: tuple[ServerMap | None, ServerMap | None] = (None, None)
    read_at: float = 0.0

    def known(self) -> tuple[ServerMap | None, ServerMap | None]:
        """The maps while fresh; an old one would most likely only cost a retry."""
        fresh = time.monotonic() - self.read_at < MAP_FRESH
        return self.maps if fresh else (None, None)

    def name_for(self, when: float) -> str:
        """Tahoe's name for ``when``, or for the first later second not taken: two
        backups in one second must not make the second replace the first."""
        name = archive_name(when)
        while name in self.names:
            when += 1
            name = archive_name(when)
        return name


# Where a history's two directories were found last, in this process (a running
# node backs up the same paths again and again): (root, parts) -> (PATH, Archives).
_found: dict[tuple[str, tuple[str, ...]], tuple[mc.DirCap, mc.DirCap]] = {}
REMEMBERED = 64


async def open_history(dirs: Directories, root: mc.DirCap, parts: list[str]) -> History:
    """``PATH`` (``parts`` below ``root``) and its ``Archives``, made when missing.

    Where this process found them before, the path is read again (it may have
    been moved) while ``PATH`` and ``Archives`` are read at once: one round of
    reads instead of one per level; used only if the path still leads there."""
    key = (root.to_string(), tuple(parts))
    remembered = _found.get(key)
    if remembered is not None:
        base_cap, archives_cap = remembered
        chain, at_base, at_archives = await asyncio.gather(
            ensure_directory(dirs, root, parts),
            dirs.children_for_change(base_cap),
            dirs.children_for_change(archives_cap),
            return_exceptions=True,
        )
        for result in (chain, at_base, at_archives):
            if isinstance(result, BaseException) and (
                result is chain or not isinstance(result, VeilError)
            ):
                raise result  # the path's own failure, or not the grid's answer at all
        if (
            isinstance(chain, mc.DirCap)
            and not isinstance(at_base, BaseException)
            and not isinstance(at_archives, BaseException)
            and chain.to_string() == base_cap.to_string()
            and _leads_to(at_base[0], archives_cap)
        ):
            names, archives_map = at_archives
            maps = (at_base[1], archives_map)
            return History(chain, archives_cap, frozenset(names), maps, time.monotonic())
        _found.pop(key, None)  # moved or replaced since: read it level by level
    base = await ensure_directory(dirs, root, parts)
    kids, base_map = await dirs.children_for_change(base)
    if ARCHIVES in kids:
        archives = _dir_of(kids[ARCHIVES], ARCHIVES)
    else:
        archives, base_map = await ensure_directory(dirs, base, [ARCHIVES]), None
    names, archives_map = await dirs.children_for_change(archives)
    if len(_found) >= REMEMBERED:
        _found.pop(next(iter(_found)))
    _found[key] = (base, archives)
    return History(base, archives, frozenset(names), (base_map, archives_map), time.monotonic())


def linking(child: str, entry: Entry) -> Change:
    """A directory change that links ``entry`` as ``child`` (keeping its link times)."""

    def change(kids: dict[str, Entry]) -> dict[str, Entry]:
        kids[child] = linked(entry, kids.get(child))
        return kids

    return change


async def link_snapshot(
    dirs: Directories, history: History, name: str, snapshot: mc.DirCap, stats: dict[str, Any]
) -> None:
    """Link ``snapshot`` as ``Archives/<name>``, then as ``Latest`` (in that order:
    ``Latest`` never names a snapshot that ``Archives`` does not list)."""
    entry = entry_for(snapshot.to_string(), {VEIL_KEY: stats})
    base_map, archives_map = history.known()
    await dirs.modify(history.archives, linking(name, entry), known=archives_map)
    await dirs.modify(history.base, linking(LATEST, entry), known=base_map)


async def _count(dirs: Directories, cap: mc.DirCap) -> tuple[int, int]:
    files = size = 0
    for entry in (await dirs.children(cap)).values():
        child = mc.parse_any(entry.ro_cap or "")
        if isinstance(child, mc.DirCap):
            f, s = await _count(dirs, child)
            files, size = files + f, size + s
        else:
            files += 1
            size += int(getattr(child, "size", 0) or 0)
    return files, size


async def archives_of(dirs: Directories, base: mc.DirCap) -> mc.DirCap:
    children = await dirs.children(base)
    if ARCHIVES not in children:
        raise NotFound("there is no backup here (no Archives directory)")
    return _dir_of(children[ARCHIVES], ARCHIVES)


async def list_snapshots(
    dirs: Directories, base: mc.DirCap, *, count: bool = True
) -> list[Snapshot]:
    """The snapshots under ``base/Archives``, oldest first (names that are not
    times are left out)."""
    found = []
    for name, entry in (await dirs.children(await archives_of(dirs, base))).items():
        when = archive_time(name)
        cap = mc.parse_any(entry.ro_cap or "")
        if when is None or not isinstance(cap, mc.DirCap):
            continue
        stats = entry.metadata.get(VEIL_KEY)
        files = stats.get("files") if isinstance(stats, dict) else None
        nbytes = stats.get("bytes_total") if isinstance(stats, dict) else None
        if (files is None or nbytes is None) and count:
            files, nbytes = await _count(dirs, cap)
        found.append(Snapshot(name, when, cap, files, nbytes))
    return sorted(found, key=lambda s: (s.time, s.name))


async def unlink(dirs: Directories, base: mc.DirCap, names: Iterable[str]) -> None:
    """Remove the named snapshots from ``Archives/`` in one change."""
    gone = set(names)
    archives = await archives_of(dirs, base)

    def change(kids: dict[str, Entry]) -> dict[str, Entry]:
        return {n: e for n, e in kids.items() if n not in gone}

    await dirs.modify(archives, change)


__all__ = [
    "ARCHIVES",
    "LATEST",
    "History",
    "Snapshot",
    "ensure_directory",
    "link_snapshot",
    "linking",
    "list_snapshots",
    "open_history",
]
