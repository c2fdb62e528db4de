"""``veil cp``: copy files and directory trees between local disk and the grid.

Up: files become immutable (CHK/LIT) files; a directory tree becomes mutable
directories, each written once with all its entries; ``mtime``/``ctime``
go into each entry's metadata. Down: files are written as ``NAME.part`` and
renamed when complete, then given the recorded modification time (a FIFO or
device already there is written into instead: ``local_files``).

What cannot be copied is skipped with a warning, and the command then exits
non-zero, as GNU cp does: a local name that is not valid UTF-8 (grid names
are Unicode), a FIFO, socket or device inside a tree
(a FIFO would block, a device may never end; one named on the command line
is read), a grid name that would leave the local directory (``..``).

Files of a tree go up and down up to ``PARALLEL`` at a time (big ones
``PARALLEL_BIG`` at a time, so memory stays bounded): small files then share
one batch request per server where the servers offer veil's batch extension.
The first error stops the copy; the transfers still running are cancelled.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from veil.adapters.node.client_session import Client
from veil.errors import UsageError, VeilError
from veil.formats import mutable_caps as mc
from veil.formats.cap_display import scrub
from veil.formats.caps import CHKReadCap, LiteralCap
from veil.formats.dirnode import Entry
from veil.frontends.cli import grid_paths
from veil.frontends.cli.grid_paths import GridPath
from veil.frontends.cli.local_files import open_input, open_output
from veil.services.directories import entry_for

T = TypeVar("T")
PARALLEL = 32
PARALLEL_BIG = 2
BIG = 1024 * 1024


class _Slots:
    """How many file transfers of one copy may run at once."""

    def __init__(self) -> None:
        self.small = asyncio.Semaphore(PARALLEL)
        self.big = asyncio.Semaphore(PARALLEL_BIG)

    def for_size(self, size: int | None) -> asyncio.Semaphore:
        return self.big if size is None or size > BIG else self.small


async def _all(jobs: Sequence[Awaitable[T]]) -> list[T]:
    """Every job's result in order; on the first error the others are cancelled
    and that error (not a group of them) is raised."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _times(st: os.stat_result) -> dict[str, Any]:
    return {"mtime": st.st_mtime, "ctime": st.st_ctime}


def _warn(skipped: list[str], line: str) -> None:
    skipped.append(line)
    sys.stderr.write(scrub(f"veil: warning: {line}") + "\n")


def _unicode_name(local: Path) -> bool:
    try:
        local.name.encode("utf-8")  # undecodable bytes arrive as lone surrogates
    except UnicodeEncodeError:
        return False
    return True


async def _upload_file(client: Client, local: Path, st: os.stat_result, slots: _Slots) -> Entry:
    regular = stat.S_ISREG(st.st_mode)
    async with slots.for_size(st.st_size if regular else None):
        f, size = open_input(str(local))
        with f:
            result = await client.uploader().upload_file(f, size)
    return entry_for(result.cap.to_string(), _times(st))


async def _upload_tree(
    client: Client,
    local: Path,
    recursive: bool,
    skipped: list[str],
    *,
    top: bool,
    slots: _Slots | None = None,
) -> Entry | None:
    """The entry for ``local``, or None when it was skipped (with a warning)."""
    if not _unicode_name(local):
        _warn(skipped, f"skipped {os.fsencode(local)!r}: its name is not valid UTF-8")
        return None
    slots = slots or _Slots()
    st = local.stat() if top else local.lstat()
    if not stat.S_ISDIR(st.st_mode):
        if top or stat.S_ISREG(st.st_mode):  # what was named is read whatever it is
            return await _upload_file(client, local, st, slots)
        _warn(skipped, f"skipped {local}: neither a file nor a directory")
        return None
    if not recursive:
        raise UsageError(f"{local} is a directory: use cp -r")
    # links are not followed (a loop, or a path outside the tree)
    names = [child for child in sorted(local.iterdir()) if not child.is_symlink()]
    entries = await _all(
        [_upload_tree(client, c, recursive, skipped, top=False, slots=slots) for c in names]
    )
    children = {c.name: e for c, e in zip(names, entries, strict=True) if e is not None}
    cap = await client.directories().create(children)
    return entry_for(cap.to_string(), _times(st))


async def copy_up(
    client: Client, local: Path, target: GridPath, *, recursive: bool, skipped: list[str]
) -> None:
    """Copy ``local`` to ``target``; names that cannot be copied are warned about
    and added to ``skipped`` (the command then exits non-zero)."""
    if not local.exists():
        raise UsageError(f"{local} does not exist")
    entry = await _upload_tree(client, local, recursive, skipped, top=True)
    if entry is None:
        return
    dirs = client.directories()
    try:
        existing: Entry | None = await dirs.walk(target.root, target.parts)
    except VeilError:
        existing = None
    if existing is not None and isinstance(mc.parse_any(existing.rw_cap or ""), mc.DirCap):
        target = GridPath(target.root, [*target.parts, local.name], target.text)
    await grid_paths.link(dirs, target, entry)


def _safe_name(name: str) -> bool:
    """A grid name that stays inside the local directory it is written into."""
    return (
        name not in ("", ".", "..") and "/" not in name and os.sep not in name and "\0" not in name
    )


async def _download(
    client: Client,
    entry: Entry,
    local: Path,
    recursive: bool,
    skipped: list[str],
    slots: _Slots | None = None,
) -> None:
    slots = slots or _Slots()
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if isinstance(cap, mc.DirCap):
        if not recursive:
            raise UsageError(f"{local.name} is a directory on the grid: use cp -r")
        local.mkdir(exist_ok=True)
        jobs = []
        for name, child in (await client.directories().children(cap)).items():
            if not _safe_name(name):
                _warn(skipped, f"skipped {name!r} in {local}: not a name a local file can have")
                continue
            jobs.append(_download(client, child, local / name, recursive, skipped, slots))
        await _all(jobs)
        regular = True
    else:
        if not isinstance(cap, mc.SSKWriteCap | mc.SSKReadCap | CHKReadCap | LiteralCap):
            raise UsageError(f"{local.name}: veil cannot read this kind of object")
        size = cap.size if isinstance(cap, CHKReadCap | LiteralCap) else None
        async with slots.for_size(size):
            regular = await _download_file(client, cap, local)
    when = entry.metadata.get("mtime")
    if regular and isinstance(when, int | float):
        os.utime(local, (when, when))


async def _download_file(
    client: Client, cap: mc.SSKWriteCap | mc.SSKReadCap | CHKReadCap | LiteralCap, local: Path
) -> bool:
    """Write one grid file to ``local``; whether ``local`` is a regular file."""
    out = open_output(str(local))  # a FIFO or a device is written into, never replaced
    try:
        if isinstance(cap, mc.SSKWriteCap | mc.SSKReadCap):
            out.file.write(await client.mutable_files().read(cap))
        else:
            async for chunk in client.downloader().stream(cap, 0, None):  # streamed
                out.file.write(chunk)
    except BaseException:
        out.abort()
        raise
    await asyncio.to_thread(out.commit)  # fsync in a thread: the other files go on
    return out.regular


async def copy_down(
    client: Client, source: GridPath, local: Path, *, recursive: bool, skipped: list[str]
) -> None:
    entry = await client.directories().walk(source.root, source.parts)
    if local.is_dir() and source.parts:
        local = local / source.parts[-1]
    await _download(client, entry, local, recursive, skipped)
