"""Directories in the web API, as Tahoe 1.20's web/directory.py and unlinked.py.

``POST /uri?t=mkdir`` (``format=``, ``private-key=``), ``t=mkdir-with-children``
and ``t=mkdir-immutable`` (children as ``t=json`` gives them); on a directory
``GET ?t=json|uri|readonly-uri|info`` and ``POST ?t=mkdir|mkdir-with-children|
mkdir-immutable|upload|uri|unlink|delete|rename|relink|set-children``. Answers
are Tahoe's: the new cap as text/html, ``"thing unlinked"``, ``"thing moved"``,
``"Okay so I did it."``. Every change is one read-modify-write of the
directory through ``veil.services.directories`` (a ``rename`` within one
directory is a single change, never a window with both names or neither).
Deep operations (check, manifest) are ``wapi_operations``.
"""

from __future__ import annotations

import html
import json
from urllib.parse import quote

from aiohttp import web

from veil.adapters.web.wapi_errors import WebError, existing_child, no_such_child
from veil.adapters.web.wapi_nodes import Node, dir_json, html_text, json_text, plain
from veil.adapters.web.wapi_requests import (
    MAX_JSON_BODY,
    Args,
    body_of,
    file_format,
    replace_arg,
)
from veil.adapters.web.wapi_session import GatewaySession, check_name, signing_key_arg
from veil.errors import VeilError
from veil.formats import mutable_caps as mc
from veil.formats.caps import UnknownCap
from veil.formats.dirnode import Entry
from veil.services.directories import linked


def children_from_json(body: bytes) -> dict[str, Entry]:
    """The children of ``mkdir-with-children``: ``{name: [type, {ro_uri, rw_uri, metadata}]}``."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
        kids: dict[str, Entry] = {}
        for name, (_kind, props) in data.items():
            rw, ro = props.get("rw_uri"), props.get("ro_uri")
            metadata = props.get("metadata", {})
            if not isinstance(metadata, dict) or not (rw or ro):
                raise ValueError(name)
            for cap in (rw, ro):
                if cap is not None and isinstance(mc.parse_any(str(cap)), UnknownCap):
                    raise WebError(f"the child {name!r} has a cap this gateway does not know", 400)
            if rw and not ro:
                ro = mc.attenuate(mc.parse_user_cap(str(rw))).to_string()
            kids[check_name(str(name))] = Entry(
                str(ro) if ro else None, str(rw) if rw else None, metadata
            )
        return kids
    except WebError:
        raise
    except (ValueError, TypeError, AttributeError, VeilError):
        raise WebError(
            "the children are not JSON of the form t=json gives: "
            '{"NAME": ["filenode", {"ro_uri": CAP, "metadata": {}}]}',
            400,
        ) from None


async def unlinked_mkdir(session: GatewaySession, request: web.Request, args: Args) -> web.Response:
    t = args.t
    if t == "mkdir":
        fmt = file_format(args, None)
        if fmt == "CHK":
            raise WebError("format=CHK not currently accepted for POST /uri?t=mkdir", 400)
        if (
            request.method == "POST"
            and not request.headers.get("Content-Type", "").startswith("multipart/form-data")
            and await body_of(request, args, MAX_JSON_BODY)
        ):
            raise WebError(
                "t=mkdir does not accept children=, try t=mkdir-with-children instead", 400
            )
        cap = await session.mkdir(fmt=fmt, key=signing_key_arg(args.get("private-key")))
    elif request.method != "POST":
        raise WebError(f"PUT /uri accepts t=mkdir, not t={t}", 400)
    else:
        kids = children_from_json(await body_of(request, args, MAX_JSON_BODY))
        if t == "mkdir-immutable":
            cap = await session.mkdir_immutable(kids)
        else:
            cap = await session.mkdir(
                kids, fmt=file_format(args, None), key=signing_key_arg(args.get("private-key"))
            )
    if args.flag("redirect_to_result"):
        from veil.adapters.web.wapi_files import redirect

        return redirect("uri/" + quote(cap, safe=""), 303)
    return html_text(cap)


async def dir_get(
    session: GatewaySession, request: web.Request, node: Node, args: Args
) -> web.StreamResponse:
    t = args.t
    if t == "json":
        return json_text(dir_json(node, await session.children(node)))
    if t == "uri":
        return plain(node.uri())
    if t == "readonly-uri":
        return plain(node.readonly_uri() or node.uri())
    if t == "info":
        from veil.adapters.web.wapi_files import info_page

        return info_page(node)
    if t == "":
        kids = await session.children(node)
        items = "".join(
            f"<li>{html.escape(n)}{'/' if Node.from_entry(e, node.cap, n).is_dir else ''}</li>"  # type: ignore[arg-type]
            for n, e in sorted(kids.items())
        )
        return web.Response(
            text=f"<!DOCTYPE html>\n<html><body><ul>{items}</ul></body></html>\n",
            content_type="text/html",
        )
    raise WebError(f"GET directory: bad t={t}", 400)


def _name(args: Args, field: str = "name") -> str:
    value = args.get(field)
    if value is None or not value.strip():
        raise WebError(f"{field}= is required", 400)
    if "/" in value:
        raise WebError(f"{field}= may not contain a slash", 400)
    return value.strip()


async def dir_post(
    session: GatewaySession, request: web.Request, node: Node, args: Args
) -> web.StreamResponse:
    """``POST`` to a directory node (Tahoe's ``DirectoryNodeHandler.render_POST``)."""
    t = args.t
    if t in ("mkdir", "mkdir-with-children", "mkdir-immutable"):
        name = args.get("name")
        if not name:
            return html_text(node.uri())
        kids = (
            {} if t == "mkdir" else children_from_json(await body_of(request, args, MAX_JSON_BODY))
        )
        replace = replace_arg(args) if t == "mkdir" else False
        cap = await session.mkdir_child(
            node,
            check_name(name),
            replace=replace,
            entries=kids,
            fmt=file_format(args, None),
            immutable=t == "mkdir-immutable",
        )
        return html_text(cap)
    if t == "upload":
        from veil.adapters.web.wapi_paths import put_child

        if args.file is None:
            raise WebError("upload requires a file= form field", 400)
        name = args.get("name") or args.file_name
        if not name or not name.strip():
            raise WebError("upload requires a name", 400)
        if "/" in name:
            raise WebError("name= may not contain a slash", 400)
        response = await put_child(session, request, node, name.strip(), args)
        return _when_done(args, response)
    if t == "uri":
        child = args.get("uri")
        if not child:
            raise WebError("set-uri requires a uri", 400)
        name = args.get("name")
        if not name:
            raise WebError("set-uri requires a name", 400)
        await session.link(node, name, child.strip(), replace_arg(args))
        return _when_done(args, html_text(child))
    if t in ("unlink", "delete"):
        await session.unlink(node, args.text("name"))
        return _when_done(args, html_text("thing unlinked"))
    if t == "rename":
        if args.get("to_dir") is not None:
            raise WebError("to_dir= is not valid for rename", 400)
        if args.get("to_name") is None:
            raise WebError("to_name= is required for rename", 400)
        return _when_done(args, await relink(session, node, args))
    if t == "relink":
        return _when_done(args, await relink(session, node, args))
    if t in ("set-children", "set_children"):
        kids = children_from_json(await body_of(request, args, MAX_JSON_BODY))
        await set_children(session, node, kids, replace_arg(args))
        return html_text("Okay so I did it.")
    from veil.adapters.web import wapi_operations

    if t in wapi_operations.DIRECTORY_OPERATIONS:
        return await wapi_operations.directory_operation(session, request, node, args)
    raise WebError(f"POST to a directory with bad t={t}", 400)


def _when_done(args: Args, response: web.Response) -> web.Response:
    """``when_done=URL``: a redirect after the change, but only within this gateway."""
    target = args.get("when_done")
    if target and target.startswith("/") and not target.startswith("//"):
        raise web.HTTPFound(target)
    return response


async def relink(session: GatewaySession, node: Node, args: Args) -> web.Response:
    from_name = check_name(_name(args, "from_name"))
    to_name = check_name(_name(args, "to_name")) if args.get("to_name") is not None else from_name
    replace = replace_arg(args)
    to_dir = args.get("to_dir")
    target = node
    if to_dir is not None and to_dir.strip() != node.write_uri():
        parts = to_dir.strip().split("/")
        target = Node.from_text(parts[0])
        if not target.is_dir:
            raise WebError("to_dir is not a directory", 400)
        target = await session.walk(target, [p for p in parts[1:] if p])
        if not target.is_dir:
            raise WebError("to_dir is not a directory", 400)
    if not isinstance(node.cap, mc.DirCap) or node.is_readonly:
        raise WebError("the directory is read-only: its cap is not a write cap", 400)
    same = target.storage_index() == node.storage_index() and target.storage_index() is not None
    if same:

        def change(kids: dict[str, Entry]) -> dict[str, Entry]:
            if from_name not in kids:
                raise no_such_child(from_name)
            if to_name == from_name:
                return kids
            if to_name in kids and _refuses(kids[to_name], replace):
                raise existing_child()
            entry = kids.pop(from_name)
            kids[to_name] = linked(entry, kids.get(to_name))
            return kids

        await (await session.directories()).modify(node.cap, change)
        return html_text("thing moved")
    child = await session.child(node, from_name)
    if child is None:
        raise no_such_child(from_name)
    await session.link(target, to_name, child.uri(), replace, child.metadata)
    await session.unlink(node, from_name)
    return html_text("thing moved")


def _refuses(old: Entry, replace: bool | str) -> bool:
    if replace is False:
        return True
    return replace == "only-files" and isinstance(
        mc.parse_any(old.rw_cap or old.ro_cap or ""), mc.DirCap
    )


async def set_children(
    session: GatewaySession, node: Node, kids: dict[str, Entry], replace: bool | str
) -> None:
    if not isinstance(node.cap, mc.DirCap) or node.is_readonly:
        raise WebError("the directory is read-only: its cap is not a write cap", 400)

    def change(old: dict[str, Entry]) -> dict[str, Entry]:
        for name, entry in kids.items():
            if name in old and _refuses(old[name], replace):
                raise existing_child()
            old[name] = linked(entry, old.get(name))
        return old

    await (await session.directories()).modify(node.cap, change)
