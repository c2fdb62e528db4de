"""``veil cp``: copy files and directory trees between local disk and the grid.

Up: files become immutable (CHK/LIT) files; a directory tree becomes mutable
directories, each written once with all its entries; ``mtime``/``ctime``
go into each entry's metadata. Down: files are written as ``NAME.part`` and
renamed when complete, then given the recorded modification time.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from veil.adapters.node.client_session import Client
from veil.errors import UsageError, VeilError
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, LiteralCap
from veil.formats.dirnode import Entry
from veil.frontends.cli import grid_paths
from veil.frontends.cli.grid_paths import GridPath
from veil.services.directories import entry_for


def _times(st: os.stat_result) -> dict[str, Any]:
    return {"mtime": st.st_mtime, "ctime": st.st_ctime}


async def _upload_tree(client: Client, local: Path, recursive: bool) -> Entry:
    st = local.stat()
    if stat.S_ISREG(st.st_mode):
        with open(local, "rb") as f:
            result = await client.uploader().upload_file(f, os.fstat(f.fileno()).st_size)
        return entry_for(result.cap.to_string(), _times(st))
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{local} is neither a file nor a directory")
    if not recursive:
        raise UsageError(f"{local} is a directory: use cp -r")
    children = {}
    for child in sorted(local.iterdir()):
        if child.is_symlink():
            continue  # links are not followed (a loop, or a path outside the tree)
        children[child.name] = await _upload_tree(client, child, recursive)
    cap = await client.directories().create(children)
    return entry_for(cap.to_string(), _times(st))


async def copy_up(client: Client, local: Path, target: GridPath, *, recursive: bool) -> None:
    if not local.exists():
        raise UsageError(f"{local} does not exist")
    entry = await _upload_tree(client, local, recursive)
    dirs = client.directories()
    try:
        existing: Entry | None = await dirs.walk(target.root, target.parts)
    except VeilError:
        existing = None
    if existing is not None and isinstance(mc.parse_any(existing.rw_cap or ""), mc.DirCap):
        target = GridPath(target.root, [*target.parts, local.name], target.text)
    await grid_paths.link(dirs, target, entry)


async def _download(client: Client, entry: Entry, local: Path, recursive: bool) -> None:
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if isinstance(cap, mc.DirCap):
        if not recursive:
            raise UsageError(f"{local.name} is a directory on the grid: use cp -r")
        local.mkdir(exist_ok=True)
        for name, child in (await client.directories().children(cap)).items():
            await _download(client, child, local / name, recursive)
    else:
        partial = local.with_name(local.name + ".part")
        with open(partial, "wb") as f:
            if isinstance(cap, mc.SSKWriteCap | mc.SSKReadCap):
                f.write(await client.mutable_files().read(cap))
            elif isinstance(cap, CHKReadCap | LiteralCap):
                async for chunk in client.downloader().stream(cap, 0, None):  # streamed
                    f.write(chunk)
            else:
                partial.unlink()
                raise UsageError(f"{local.name}: veil cannot read this kind of object")
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, local)
    when = entry.metadata.get("mtime")
    if isinstance(when, int | float):
        os.utime(local, (when, when))


async def copy_down(client: Client, source: GridPath, local: Path, *, recursive: bool) -> None:
    entry = await client.directories().walk(source.root, source.parts)
    if local.is_dir() and source.parts:
        local = local / source.parts[-1]
    await _download(client, entry, local, recursive)
