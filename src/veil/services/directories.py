"""Directories from the client side: create, list, change, walk paths.

A mutable directory is an SDMF (or MDMF) file holding ``veil.formats.dirnode``
bytes; every change is read-modify-write of the whole file (as in Tahoe): the
change is applied to the version one server map holds and published with that
map's tests (``MutableFiles.modify``), retried with backoff while other writers
change it, so a change reported done is never replaced unseen. Immutable
directories (``URI:DIR2-CHK:``, ``URI:DIR2-LIT:``) are read through the
immutable downloader.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from veil.errors import CapabilityError, NotFound, UsageError
from veil.formats import dirnode
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, LiteralCap
from veil.formats.dirnode import Entry
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.services.mutable.files import MutableFiles
from veil.services.mutable.server_map import ServerMap

Change = Callable[[dict[str, Entry]], dict[str, Entry]]


def entry_for(cap_text: str, metadata: dict[str, Any] | None = None) -> Entry:
    """A directory entry for a child cap: write caps are kept with their read cap."""
    cap = mc.parse_any(cap_text)
    if isinstance(cap, mc.DirCap | mc.SSKWriteCap | mc.SSKReadCap | mc.SSKVerifyCap):
        weaker = mc.attenuate(cap)
        if weaker != cap:
            return Entry(weaker.to_string(), cap.to_string(), dict(metadata or {}))
    return Entry(cap_text, None, dict(metadata or {}))


def linked(entry: Entry, old: Entry | None) -> Entry:
    """Tahoe's update_metadata: keep ``linkcrtime``, set ``linkmotime`` to now."""
    now = time.time()
    tahoe = dict(old.metadata.get("tahoe", {})) if old else {}
    meta = {k: v for k, v in entry.metadata.items() if k != "tahoe"}
    meta["tahoe"] = {"linkcrtime": tahoe.get("linkcrtime", now), "linkmotime": now}
    return Entry(entry.ro_cap, entry.rw_cap, meta)


class Directories:
    def __init__(self, files: MutableFiles, downloader: Downloader) -> None:
        self.files = files
        self.downloader = downloader

    async def create(
        self, entries: dict[str, Entry] | None = None, *, mdmf: bool = False
    ) -> mc.DirCap:
        """A new, unlinked mutable directory (SDMF as Tahoe's default, or MDMF)."""
        children = entries or {}

        def contents(cap: mc.SSKWriteCap) -> bytes:
            return dirnode.pack(children, cap.writekey)

        maker = self.files.mdmf().create if mdmf else self.files.create
        return mc.DirCap(await maker(contents))

    async def create_immutable(self, entries: dict[str, Entry], uploader: Uploader) -> mc.DirCap:
        """A deep-immutable directory (``URI:DIR2-CHK:``, or ``URI:DIR2-LIT:`` when its
        bytes fit in a cap); every child must be immutable too."""
        for name, entry in entries.items():
            child = mc.parse_any(entry.ro_cap or "")
            file = child.file if isinstance(child, mc.DirCap) else child
            if entry.rw_cap or not isinstance(file, CHKReadCap | LiteralCap):
                raise UsageError(f"{name}: an immutable directory can hold only immutable things")
        result = await uploader.upload_bytes(dirnode.pack(entries, None))
        assert isinstance(result.cap, CHKReadCap | LiteralCap)
        return mc.DirCap(result.cap)

    async def children(self, cap: mc.DirCap) -> dict[str, Entry]:
        f = cap.file
        if isinstance(f, mc.SSKWriteCap):
            return dirnode.unpack(await self.files.read(f), f.writekey)
        if isinstance(f, mc.SSKReadCap):
            return dirnode.unpack(await self.files.read(f), None)
        if isinstance(f, LiteralCap):
            return dirnode.unpack(f.data, None)
        if isinstance(f, CHKReadCap):
            return dirnode.unpack(await self.downloader.download_bytes(f), None)
        raise CapabilityError("a verify cap cannot list a directory")

    async def children_for_change(
        self, cap: mc.DirCap
    ) -> tuple[dict[str, Entry], ServerMap | None]:
        """The entries, and (a writable SDMF directory) the whole server map they
        came from, for a ``modify(..., known=map)`` soon after."""
        f = cap.file
        if not isinstance(f, mc.SSKWriteCap):
            return await self.children(cap), None
        data, found = await self.files.read_for_change(f)
        return dirnode.unpack(data, f.writekey), found

    async def modify(
        self, cap: mc.DirCap, change: Change, *, known: ServerMap | None = None
    ) -> dict[str, Entry]:
        """Apply ``change`` to the entries and write them back (retrying on a
        concurrent change); returns the new entries. ``known``: as
        ``MutableFiles.modify``."""
        f = cap.file
        if not isinstance(f, mc.SSKWriteCap):
            raise UsageError("this directory is read-only (its cap is not a write cap)")
        writekey = f.writekey
        result: list[dict[str, Entry]] = []

        def rewrite(old: bytes) -> bytes:
            new = change(dict(dirnode.unpack(old, writekey)))
            result.append(new)
            return dirnode.pack(new, writekey)

        await self.files.modify(f, rewrite, what="directory", known=known)
        return result[-1]

    async def walk(self, root: mc.DirCap, path: list[str]) -> Entry:
        """The entry at ``path`` below ``root`` (``NotFound`` naming what is missing)."""
        entry = Entry(mc.attenuate(root).to_string(), root.to_string())
        for depth, name in enumerate(path):
            cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
            if not isinstance(cap, mc.DirCap):
                raise NotFound(f"{'/'.join(path[:depth])} is a file, not a directory")
            children = await self.children(cap)
            name = dirnode.normalize(name)
            if name not in children:
                raise NotFound(f"no such file or directory: {'/'.join(path[: depth + 1])}")
            entry = children[name]
        return entry
