"""``/uri/CAP/PATH``: which node a request names, and what each method does to it.

As Tahoe's web/directory.py ``getChild``: the path is walked one name at a
time; PUT and POST (except t=delete, rename, check) make missing intermediate
directories; a missing last name is created only by ``PUT`` (a file, a
``t=uri`` link, ``t=mkdir``) and the ``POST ?t=mkdir*`` calls. ``PUT`` of a
new child answers 201, of a replaced one 200; ``replace=false`` over an
existing child is a 409 before anything is uploaded. ``DELETE`` unlinks and
answers the child's cap. ``GET /file/CAP/NAME`` and ``/named/CAP/NAME`` read a
file under a name (for its Content-Type). Files are read in ``wapi_files``,
directory calls made in ``wapi_directories``.
"""

from __future__ import annotations

from aiohttp import web

from veil.adapters.web import wapi_directories, wapi_files
from veil.adapters.web.wapi_errors import WebError, existing_child, no_such_child
from veil.adapters.web.wapi_nodes import Node, html_text, plain
from veil.adapters.web.wapi_requests import (
    MAX_JSON_BODY,
    MAX_MUTABLE_BODY,
    Args,
    body_of,
    file_format,
    path_segments,
    read_args,
    replace_arg,
)
from veil.adapters.web.wapi_session import GatewaySession, check_name
from veil.formats.caps import UnknownCap

NO_INTERMEDIATE = ("delete", "rename", "rename-form", "check")


def root_node(text: str) -> Node:
    node = Node.from_text(text)
    if isinstance(node.cap, UnknownCap):
        body = text.removeprefix("ro.").removeprefix("imm.")
        if body.startswith(("URI:SSK", "URI:MDMF", "URI:DIR2", "URI:CHK", "URI:LIT")):
            raise WebError("malformed capability: it starts as a Tahoe cap but does not parse", 400)
    return node


async def put_child(
    session: GatewaySession, request: web.Request, parent: Node, name: str, args: Args
) -> web.Response:
    """Upload the body (or the form's file) as ``name`` in ``parent``."""
    name = check_name(name)
    if parent.is_readonly or not parent.is_dir:
        raise WebError("the directory is read-only: its cap is not a write cap", 400)
    replace = replace_arg(args)
    existing = await session.child(parent, name)
    if existing is not None and replace is False:
        raise existing_child()
    if existing is not None and existing.is_dir:
        if replace == "only-files":
            raise existing_child()
        if request.method == "PUT":
            raise WebError("PUT to a directory", 400)
    if (
        existing is not None
        and existing.is_mutable
        and not existing.is_dir
        and not existing.is_readonly
    ):
        data = (
            args.file if args.file is not None else await body_of(request, args, MAX_MUTABLE_BODY)
        )
        await session.overwrite(existing, data)
        return html_text(existing.uri())
    cap = await wapi_files.upload_body(session, request, args, session.node_dir)
    await session.link(parent, name, cap, replace)
    return html_text(cap, status=200 if existing is not None else 201)


async def _put(
    session: GatewaySession, request: web.Request, root: Node, names: list[str], args: Args
) -> web.Response:
    t = args.t
    if not names:
        if root.is_dir:
            if t == "mkdir":
                return plain(root.uri())
            raise WebError("PUT to a directory", 400)
        if t == "" and root.is_mutable:
            offset_text = args.get("offset")
            offset = _offset(offset_text)
            data = await body_of(request, args, MAX_MUTABLE_BODY)
            await session.overwrite(root, data, offset)
            return html_text(root.uri())
        if args.get("offset") is not None:
            raise WebError("PUT to a file: append operation invoked on an immutable cap", 400)
        raise WebError("PUT to an immutable file without a directory: nothing to replace", 400)
    parent = await session.walk(root, names[:-1], create=True)
    name = names[-1]
    if t == "":
        return await put_child(session, request, parent, name, args)
    if t == "uri":
        cap = (await body_of(request, args, MAX_JSON_BODY)).decode("utf-8", "replace").strip()
        if not cap:
            raise WebError("PUT ?t=uri needs the cap as its body", 400)
        replace = replace_arg(args)
        if replace is False and await session.child(parent, name) is not None:
            raise existing_child()
        await session.link(parent, name, cap, replace)
        return html_text(cap)
    if t == "mkdir":
        found = await session.child(parent, name)
        if found is not None:
            if not found.is_dir:
                raise WebError("PUT to a file: bad t=mkdir", 400)
            return plain(found.uri())
        fmt = file_format(args, None)
        return plain(await session.mkdir_child(parent, name, fmt=fmt))
    raise WebError(f"PUT to a file: bad t={t}", 400)


def _offset(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise WebError("PUT to a mutable file: Invalid offset", 400) from None
    if value < 0:
        raise WebError("PUT to a mutable file: Invalid offset", 400)
    return value


async def _post(
    session: GatewaySession, request: web.Request, root: Node, names: list[str], args: Args
) -> web.StreamResponse:
    t = args.t
    node = root
    if names:
        parent = await session.walk(root, names[:-1], create=t not in NO_INTERMEDIATE)
        found = await session.child(parent, names[-1]) if parent.is_dir else None
        if found is None:
            if t in ("mkdir", "mkdir-with-children", "mkdir-immutable") and parent.is_dir:
                kids = (
                    {}
                    if t == "mkdir"
                    else wapi_directories.children_from_json(
                        await body_of(request, args, MAX_JSON_BODY)
                    )
                )
                cap = await session.mkdir_child(
                    parent,
                    names[-1],
                    replace=False,
                    entries=kids,
                    fmt=file_format(args, None),
                    immutable=t == "mkdir-immutable",
                )
                return html_text(cap)
            if t == "upload" and parent.is_dir:
                return await put_child(session, request, parent, names[-1], args)
            raise no_such_child(names[-1])
        node = found
    if node.is_dir:
        return await wapi_directories.dir_post(session, request, node, args)
    if t == "check":
        from veil.adapters.web import wapi_operations

        return await wapi_operations.check(session, request, node, args)
    if t == "upload":
        if node.is_mutable and not node.is_readonly:
            if args.file is None:
                raise WebError("upload requires a file= form field", 400)
            await session.overwrite(node, args.file)
            return html_text(node.uri())
        if node.parent is None or node.name is None:
            raise WebError(
                "POST ?t=upload to an immutable file needs a directory to put it in", 400
            )
        return await put_child(session, request, Node(node.parent), node.name, args)
    raise WebError(f"POST to file: bad t={t}", 400)


async def uri_path(session: GatewaySession, request: web.Request) -> web.StreamResponse:
    """Every method on ``/uri/CAP[/PATH]``."""
    segments = path_segments(request.raw_path.split("?", 1)[0], "/uri/")
    if not segments:
        return await wapi_files.unlinked(session, request, session.node_dir)
    root, names = root_node(segments[0]), segments[1:]
    args = await read_args(request)
    if request.method in ("GET", "HEAD"):
        node = await session.walk(root, names)
        if node.is_dir:
            return await wapi_directories.dir_get(session, request, node, args)
        return await wapi_files.file_get(session, request, node, args)
    if request.method == "PUT":
        return await _put(session, request, root, names, args)
    if request.method == "POST":
        return await _post(session, request, root, names, args)
    if request.method == "DELETE":
        if not names:
            raise WebError("DELETE needs a path below the directory cap", 400)
        parent = await session.walk(root, names[:-1])
        removed = await session.unlink(parent, names[-1])
        return html_text(removed.rw_cap or removed.ro_cap or "")
    raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD", "PUT", "POST", "DELETE"])


async def named_file(session: GatewaySession, request: web.Request) -> web.StreamResponse:
    """``GET /file/CAP/NAME`` and ``/named/CAP/NAME``: a file read under a name."""
    prefix = "/" + request.path.split("/")[1] + "/"
    segments = path_segments(request.raw_path.split("?", 1)[0], prefix)
    if not segments:
        raise WebError("GET /file/ needs a cap", 400)
    node = root_node(segments[0])
    if len(segments) > 1 and node.is_dir:
        node = await session.walk(node, segments[1:])
    elif len(segments) > 1:
        node.name = segments[-1]
    args = await read_args(request)
    if node.is_dir:
        return await wapi_directories.dir_get(session, request, node, args)
    return await wapi_files.file_get(session, request, node, args)
