"""The UI's files: aliases, folders, upload and download, named by alias and path.

``/ui/files`` lists the aliases and makes new ones; ``/ui/files/browse``
lists one folder (``?alias=NAME&path=a/b``) with forms to upload a file and
make a folder; ``/ui/download`` sends one file as an attachment (never shown
in the page: a file from the grid cannot run in the UI's origin). Caps never
appear in a page or an address. Names from the grid are shown escaped, and a
name given for an upload or a new folder must be one plain name (no ``/``,
no ``.``/``..``, no control characters): anything else is refused, and
nothing is changed.
"""

from __future__ import annotations

import logging
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from veil.adapters.node.aliases import Aliases, normalize
from veil.adapters.node.client_session import Client
from veil.adapters.web.ui.html import error_page, esc, form, notice, page, size, url, when
from veil.adapters.web.ui.shared_client import client_of
from veil.errors import NotFound, UsageError, VeilError
from veil.formats import dirnode
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, LiteralCap, parse_read_cap
from veil.services.directories import entry_for, linked

CHUNK = 256 * 1024
log = logging.getLogger(__name__)


def plain_name(text: str) -> str:
    """One directory entry name typed by the user, or ``UsageError``."""
    name = unicodedata.normalize("NFC", text.strip())
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UsageError(f"{name!r} is not a usable name: use a plain name without / or \\")
    if any(unicodedata.category(c) == "Cc" for c in name) or len(name.encode()) > 255:
        raise UsageError("that name has control characters or is too long")
    return name


def path_parts(text: str) -> list[str]:
    return [p for p in text.split("/") if p]


def alias_root(node_dir: Path, alias: str) -> mc.DirCap:
    caps = Aliases(node_dir).load()
    if alias not in caps:
        raise NotFound(f"there is no alias called {alias!r}")
    cap = mc.parse_any(caps[alias])
    if not isinstance(cap, mc.DirCap):
        raise UsageError(f"alias {alias!r} does not name a folder")
    return cap


async def folder(client: Client, node_dir: Path, alias: str, parts: list[str]) -> mc.DirCap:
    entry = await client.directories().walk(alias_root(node_dir, alias), parts)
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if not isinstance(cap, mc.DirCap):
        raise UsageError(f"{'/'.join(parts)} is a file, not a folder")
    return cap


def _kind(entry: dirnode.Entry) -> tuple[str, int | None]:
    cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
    if isinstance(cap, mc.DirCap):
        return "folder", None
    return "file", getattr(mc.parse_any(entry.ro_cap or ""), "size", None)


async def listing(
    request: web.Request, node_dir: Path, alias: str, parts: list[str]
) -> dict[str, Any]:
    async with client_of(request) as client:
        cap = await folder(client, node_dir, alias, parts)
        children = await client.directories().children(cap)
    items = []
    for name, entry in sorted(children.items()):
        kind, nbytes = _kind(entry)
        tahoe = entry.metadata.get("tahoe", {})
        stamp = entry.metadata.get("mtime") or (tahoe.get("linkmotime") if tahoe else None)
        items.append({"name": name, "kind": kind, "size": nbytes, "modified": stamp})
    writable = isinstance(cap.file, mc.SSKWriteCap)
    return {"alias": alias, "path": "/".join(parts), "writable": writable, "items": items}


async def aliases_html(request: web.Request, node_dir: Path) -> web.Response:
    names = sorted(Aliases(node_dir).load())
    rows = "".join(
        f'<li><a href="{esc(url("/ui/files/browse", alias=n))}">{esc(n)}</a></li>' for n in names
    )
    body = (
        "<p>An alias is a name for one of your top folders on the storage grid.</p>"
        + (f'<ul id="aliases">{rows}</ul>' if names else "<p>You have no aliases yet.</p>")
        + "<h2>Make a new alias</h2>"
        + form(
            request,
            "/ui/files/alias",
            '<label>Alias name <input name="alias" required maxlength="100" '
            'pattern="[^:]+" title="a name without :"></label> '
            "<button>Make it</button>",
        )
    )
    return page(request, "Your files", body, current="/ui/files")


async def create_alias(request: web.Request, node_dir: Path) -> web.Response:
    form_data = await request.post()
    name = normalize(str(form_data.get("alias", "")))
    if name in Aliases(node_dir).load():
        raise UsageError(f"alias {name!r} already exists: choose another name")
    async with client_of(request) as client:

        async def make() -> str:
            return (await client.directories().create()).to_string()

        await Aliases(node_dir).create(name, make)
    raise web.HTTPSeeOther(url("/ui/files/browse", alias=name))


def _crumbs(alias: str, parts: list[str]) -> str:
    links = [f'<a href="{esc(url("/ui/files/browse", alias=alias))}">{esc(alias)}</a>']
    for i, name in enumerate(parts):
        href = url("/ui/files/browse", alias=alias, path="/".join(parts[: i + 1]))
        links.append(f'<a href="{esc(href)}">{esc(name)}</a>')
    return '<p class="crumbs">In: ' + " / ".join(links) + "</p>"


async def browse_html(request: web.Request, node_dir: Path) -> web.Response:
    alias = request.query.get("alias", "")
    parts = path_parts(request.query.get("path", ""))
    info = await listing(request, node_dir, alias, parts)
    here = "/".join(parts)
    rows = []
    for item in info["items"]:
        child = "/".join([*parts, item["name"]])
        if item["kind"] == "folder":
            link = url("/ui/files/browse", alias=alias, path=child)
            shown = f'<a href="{esc(link)}">{esc(item["name"])}/</a>'
        else:
            link = url("/ui/download", alias=alias, path=child)
            shown = f'<a href="{esc(link)}" download>{esc(item["name"])}</a>'
        rows.append(
            f"<tr><td>{shown}</td><td>{item['kind']}</td>"
            f"<td>{esc(size(item['size']))}</td><td>{esc(when(item['modified']))}</td></tr>"
        )
    table = (
        '<table id="listing"><thead><tr><th>Name</th><th>Kind</th><th>Size</th>'
        f"<th>Changed</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p>This folder is empty.</p>"
    )
    target = url("/ui/files/upload", alias=alias, path=here)
    tools = (
        "<h2>Add a file</h2>"
        + form(
            request,
            target,
            '<input type="file" name="file" required> '
            '<label><input type="checkbox" name="replace" value="yes"> replace a file '
            "of the same name</label> <button>Upload</button>",
            multipart=True,
        )
        + '<p class="hint">On Tails, Tor Browser can open and save files only in the '
        "Tor Browser folder (or Persistent/Tor Browser): copy a file there first.</p>"
        + "<h2>New folder</h2>"
        + form(
            request,
            url("/ui/files/mkdir", alias=alias, path=here),
            '<label>Folder name <input name="name" required maxlength="255"></label> '
            "<button>Make folder</button>",
        )
        if info["writable"]
        else notice("This folder is read-only: you can look and download, not change it.")
    )
    title = f"{alias}: /{here}" if here else alias
    return page(request, title, _crumbs(alias, parts) + table + tools, current="/ui/files")


async def _link(
    client: Client, node_dir: Path, alias: str, parts: list[str], name: str, cap: str, replace: bool
) -> None:
    where = await folder(client, node_dir, alias, parts)

    def change(children: dict[str, dirnode.Entry]) -> dict[str, dirnode.Entry]:
        if not replace and name in children:
            raise UsageError(f"{name!r} is already here (tick 'replace' to overwrite it)")
        children[name] = linked(entry_for(cap), children.get(name))
        return children

    await client.directories().modify(where, change)


async def mkdir(request: web.Request, node_dir: Path) -> web.Response:
    alias, parts = request.query.get("alias", ""), path_parts(request.query.get("path", ""))
    name = plain_name(str((await request.post()).get("name", "")))
    async with client_of(request) as client:
        made = await client.directories().create()
        await _link(client, node_dir, alias, parts, name, made.to_string(), False)
    raise web.HTTPSeeOther(url("/ui/files/browse", alias=alias, path="/".join(parts)))


async def upload(request: web.Request, node_dir: Path) -> web.Response:
    alias, parts = request.query.get("alias", ""), path_parts(request.query.get("path", ""))
    alias_root(node_dir, alias)  # an unknown alias is refused before the body is read
    reader = await request.multipart()
    replace, name, spool = False, "", None
    tmp_dir = node_dir / "private"
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "replace":
                replace = (await part.text()) == "yes"
            elif part.name == "file" and spool is None:
                name = plain_name(os.path.basename((part.filename or "").replace("\\", "/")))
                spool = tempfile.TemporaryFile(dir=tmp_dir)  # noqa: SIM115 (closed below)
                while chunk := await part.read_chunk(CHUNK):
                    spool.write(chunk)
        if spool is None:
            raise UsageError("no file was chosen")
        length = spool.tell()
        async with client_of(request) as client:
            result = await client.uploader().upload_file(spool, length)
            await _link(client, node_dir, alias, parts, name, result.cap.to_string(), replace)
    finally:
        if spool is not None:
            spool.close()
    raise web.HTTPSeeOther(url("/ui/files/browse", alias=alias, path="/".join(parts)))


async def download(request: web.Request, node_dir: Path) -> web.StreamResponse:
    alias, parts = request.query.get("alias", ""), path_parts(request.query.get("path", ""))
    if not parts:
        return error_page(request, "Name a file to download.")
    async with client_of(request) as client:
        entry = await client.directories().walk(alias_root(node_dir, alias), parts)
        cap = mc.parse_any(entry.ro_cap or entry.rw_cap or "")
        if isinstance(cap, mc.DirCap):
            return error_page(request, "That is a folder, not a file.")
        response = web.StreamResponse()
        response.content_type = "application/octet-stream"
        response.headers["Content-Disposition"] = (
            f"attachment; filename*=UTF-8''{quote(parts[-1], safe='')}"
        )
        if isinstance(cap, mc.SSKWriteCap | mc.SSKReadCap):
            data = await client.mutable_files().read(cap)
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data)
        else:
            read_cap = (
                cap
                if isinstance(cap, CHKReadCap | LiteralCap)
                else parse_read_cap(entry.ro_cap or "")
            )
            chunks = aiter(client.downloader().stream(read_cap))
            first = await anext(chunks, b"")  # "not enough shares" still gets a page
            response.content_length = read_cap.size
            await response.prepare(request)
            await response.write(first)
            try:
                async for chunk in chunks:
                    await response.write(chunk)
            except VeilError as exc:  # too late for a page: the browser sees it cut short
                log.warning("a download from the web UI broke off: %s", exc)
                if request.transport is not None:
                    request.transport.close()
                return response
        await response.write_eof()
        return response
