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
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

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


async def _upload_file(client: Client, local: Path, st: os.stat_result) -> Entry:
    f, size = open_input(str(local))
    with f:
        result = await client.uploader().upload_file(f, size)
    return entry_for(result.cap.to_string(), _times(st))


async def _upload_tree(
    client: Client, local: Path, recursive: bool, skipped: list[str], *, top: bool
) -> Entry | None:
    """The entry for ``local``, or None when it was skipped (with a warning)."""
    if not _unicode_name(local):
        _warn(skipped, f"skipped {os.fsencode(local)!r}: its name is not valid UTF-8")
        return None
    st = local.stat() if top else local.lstat()
    if not stat.S_ISDIR(st.st_mode):
        if top or stat.S_ISREG(st.st_mode):  # what was named is read whatever it is
            return await _upload_file(client, local, st)
        _warn(skipped, f"skipped {local}: neither a file nor a directory")
        return None
    if not recursive:
        raise UsageError(f"{local} is a directory: use cp -r")
    children = {}
    for child in sorted(local.iterdir()):
        if child.is_symlink():
            continue  # links are not followed (a loop, or a path outside the tree)
        entry = await _upload_tree(client, child, recursive, skipped, top=False)
        if entry is not None:
            children[child.name] = entry
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
    client: Client, entry: Entry, local: Path, recursive: bool, skipped: list[str]
) -> None:
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if isinstance(cap, mc.DirCap):
        if not recursive:
            raise UsageError(f"{local.name} is a directory on the grid: use cp -r")
        local.mkdir(exist_ok=True)
        for name, child in (await client.directories().children(cap)).items():
            if not _safe_name(name):
                _warn(skipped, f"skipped {name!r} in {local}: not a name a local file can have")
                continue
            await _download(client, child, local / name, recursive, skipped)
        regular = True
    else:
        if not isinstance(cap, mc.SSKWriteCap | mc.SSKReadCap | CHKReadCap | LiteralCap):
            raise UsageError(f"{local.name}: veil cannot read this kind of object")
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
        out.commit()
        regular = out.regular
    when = entry.metadata.get("mtime")
    if regular and isinstance(when, int | float):
        os.utime(local, (when, when))


async def copy_down(
    client: Client, source: GridPath, local: Path, *, recursive: bool, skipped: list[str]
) -> None:
    entry = await client.directories().walk(source.root, source.parts)
    if local.is_dir() and source.parts:
        local = local / source.parts[-1]
    await _download(client, entry, local, recursive, skipped)
