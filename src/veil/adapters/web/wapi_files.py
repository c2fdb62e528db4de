"""Files in the web API: ``/uri`` (unlinked uploads, the ``?uri=`` redirect) and
reading a file node, as Tahoe 1.20's web/unlinked.py, root.py and filenode.py.

``PUT /uri`` uploads the body as an immutable file (``format=SDMF|MDMF`` or
``mutable=true``: a mutable one, ``private-key=`` its signing key) and answers
the cap. ``GET /uri?uri=CAP`` redirects (302) to ``/uri/CAP``. Reading a file:
``Range`` (the first range only, 206 with ``Content-Range``, 416 past the
end), ``filename=`` (sets the Content-Type, as Tahoe guesses it from the
name), ``save=true`` (``Content-Disposition: attachment``), an ``ETag`` for
immutable files (``SI-t``) answering ``If-None-Match`` with 304. Immutable
files are streamed segment by segment; mutable ones are read whole (they are
limited to 64 MiB). Directories are ``wapi_directories``.
"""

from __future__ import annotations

import html
import io
import mimetypes
from collections.abc import AsyncGenerator
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from veil.adapters.web.wapi_errors import WebError
from veil.adapters.web.wapi_nodes import Node, file_json, html_text, json_text, plain
from veil.adapters.web.wapi_requests import (
    MAX_MUTABLE_BODY,
    Args,
    body_of,
    file_format,
    read_args,
    spool_body,
)
from veil.adapters.web.wapi_session import GatewaySession, signing_key_arg
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, LiteralCap


async def upload_body(
    session: GatewaySession, request: web.Request, args: Args, node_dir: Path
) -> str:
    """The request body as a new file (immutable unless ``format``/``mutable`` say so)."""
    fmt = file_format(args)
    if fmt in ("SDMF", "MDMF"):
        data = (
            args.file if args.file is not None else await body_of(request, args, MAX_MUTABLE_BODY)
        )
        return await session.create_mutable(data, fmt, signing_key_arg(args.get("private-key")))
    held = args.file if args.file is not None else args.raw
    if held is not None:
        return await session.upload(io.BytesIO(held), len(held))
    f, size = await spool_body(request, node_dir)
    with f:
        return await session.upload(f, size)


async def unlinked(
    session: GatewaySession, request: web.Request, node_dir: Path
) -> web.StreamResponse:
    """``/uri`` itself: PUT and POST make unlinked things, GET ``?uri=`` redirects."""
    args = await read_args(request)
    t = args.t
    if request.method in ("GET", "HEAD"):
        there = args.get("uri")
        if not there:
            raise WebError("GET /uri requires uri=", 400)
        location = f"{request.url.origin()}/uri/{quote(there.strip(), safe='')}"
        return redirect(location)
    from veil.adapters.web import wapi_directories as dirs

    if t in ("mkdir", "mkdir-with-children", "mkdir-immutable"):
        return await dirs.unlinked_mkdir(session, request, args)
    if request.method == "PUT" and t == "":
        return html_text(await upload_body(session, request, args, node_dir))
    if request.method == "POST" and t == "upload":
        if args.file is None:
            raise WebError("POST /uri?t=upload needs a file= form field", 400)
        return html_text(await upload_body(session, request, args, node_dir))
    raise WebError(
        f"/uri accepts only PUT, PUT?t=mkdir, POST?t=upload, and POST?t=mkdir; not t={t}", 400
    )


def redirect(location: str, status: int = 302) -> web.Response:
    """A redirect with ``Location`` exactly as given (Tahoe's has the cap %-encoded)."""
    shown = html.escape(location)
    page = f'<html><head><meta http-equiv="refresh" content="0;URL={shown}"></head></html>\n'
    return web.Response(
        status=status,
        body=page.encode(),
        headers={"Location": location, "Content-Type": "text/html; charset=utf-8"},
    )


def content_type(filename: str) -> tuple[str, str | None]:
    ctype, encoding = mimetypes.guess_type(filename, strict=False)
    return ctype or "text/plain", encoding


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first byte range of a ``Range`` header (inclusive), None to ignore it."""
    if not header:
        return None
    units, _, spec = header.partition("=")
    if units.strip() != "bytes" or not spec:
        return None
    first_text, _, last_text = spec.split(",")[0].strip().partition("-")
    try:
        if first_text == "":
            first, last = size - int(last_text), size - 1
        else:
            first = int(first_text)
            last = size - 1 if last_text == "" else int(last_text)
    except ValueError:
        return None
    if last < first:
        return None
    if first >= size:
        raise WebError("First beyond end of file", 416)
    return max(0, first), min(size - 1, last)


def _etag(node: Node, t: str, prefix: str = "") -> str | None:
    si = node.storage_index_text()
    if node.is_mutable or not si:
        return None
    return f"{prefix}{si}-{t}"


def not_modified(request: web.Request, etag: str | None) -> web.Response | None:
    if etag is None:
        return None
    if request.headers.get("If-None-Match", "").strip('"') == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return None


async def read_file(
    session: GatewaySession, request: web.Request, node: Node, args: Args
) -> web.StreamResponse:
    """``GET`` (or ``HEAD``) a file node's bytes."""
    etag = _etag(node, "")
    if (cached := not_modified(request, etag)) is not None:
        return cached
    filename = args.get("filename") or node.name or "unknown"
    ctype, encoding = content_type(filename)
    headers = {"Content-Type": ctype, "Accept-Ranges": "bytes"}
    if encoding:
        headers["Content-Encoding"] = encoding
    if args.flag("save"):
        shown = "".join(c for c in filename if c >= " " and c != "\x7f").replace('"', '\\"')
        headers["Content-Disposition"] = f'attachment; filename="{shown}"'
    if etag:
        headers["ETag"] = etag
    f = node.file
    whole: bytes | None = None
    if isinstance(f, mc.SSKWriteCap | mc.SSKReadCap):
        whole = await session.read_mutable(node)
        size = len(whole)
    elif isinstance(f, CHKReadCap | LiteralCap):
        size = f.size
    else:
        raise WebError("this cap cannot be read (a verify cap holds no key)", 400)
    wanted = _range(request.headers.get("Range"), size)
    status, first, length = 200, 0, size
    if wanted is not None:
        status, first, length = 206, wanted[0], wanted[1] - wanted[0] + 1
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{size}"
    headers["Content-Length"] = str(length)
    response = web.StreamResponse(status=status, headers=headers)
    if request.method == "HEAD":
        await response.prepare(request)
        return response
    if whole is not None:
        response.content_length = length
        await response.prepare(request)
        await response.write(whole[first : first + length])
        return response
    assert isinstance(f, CHKReadCap | LiteralCap)
    chunks: AsyncGenerator[bytes] = session.stream_immutable(f, first, length)
    try:
        head = await anext(chunks, b"")  # a failure before the first byte is a clean error
    except BaseException:
        await chunks.aclose()
        raise
    await response.prepare(request)
    try:
        await response.write(head)
        async for chunk in chunks:
            await response.write(chunk)
    finally:
        await chunks.aclose()
    return response


async def file_get(
    session: GatewaySession, request: web.Request, node: Node, args: Args
) -> web.StreamResponse:
    """GET a file node: its bytes, or ``t=json|uri|readonly-uri|info``."""
    t = args.t
    if node.is_unknown:
        if t == "json":
            return json_text(["unknown", {"ro_uri": node.cap.to_string()}])
        raise WebError(
            f"GET unknown URI type: can only do t=info and t=json, not t={t}.\n"
            "Using a webapi server that supports a later version of Tahoe may help.",
            400,
        )
    if t in ("json", "uri", "readonly-uri"):
        etag = _etag(node, t)
        if (cached := not_modified(request, etag)) is not None:
            return cached
    if t == "":
        return await read_file(session, request, node, args)
    if t == "json":
        size = node.known_size()
        if node.is_mutable and isinstance(node.file, mc.SSKWriteCap | mc.SSKReadCap):
            size = len(await session.read_mutable(node))
        return json_text(file_json(node, size))
    if t == "uri":
        return plain(node.uri())
    if t == "readonly-uri":
        return plain(node.readonly_uri() or node.uri())
    if t == "info":
        return info_page(node)
    raise WebError(f"GET file: bad t={t}", 400)


def info_page(node: Node) -> web.Response:
    """``t=info``: a small page of facts about the node (never its caps' keys in logs)."""
    kind = "directory" if node.is_dir else "file"
    rows = [
        ("Type", f"{'mutable' if node.is_mutable else 'immutable'} {kind} ({node.format})"),
        ("Storage Index", node.storage_index_text() or "None"),
    ]
    if (size := node.known_size()) is not None:
        rows.append(("Size", str(size)))
    body = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in rows)
    return web.Response(
        text=f"<!DOCTYPE html>\n<html><head><title>More Info</title></head>"
        f"<body><h1>More Info</h1><ul>{body}</ul></body></html>\n",
        content_type="text/html",
    )
