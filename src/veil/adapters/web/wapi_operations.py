"""Deep and slow operations of the web API: manifests, checks, ``/operations/``.

``POST DIR?t=stream-manifest`` streams one JSON line per node reached (path,
cap, type, verifycap, repaircap, storage-index), then a ``stats`` line, as
Tahoe's ``ManifestStreamer``: a large tree is reported as it is walked, not at
the end. ``t=start-manifest&ophandle=H`` runs the same walk in the
background and redirects to ``/operations/H``, whose ``?t=status&output=JSON``
says ``finished`` and, once done, holds the manifest (Tahoe's shape). The walk
reads each directory once, follows directories by storage index (a loop or a
directory linked twice is walked once), and never leaves the tree it was given.
``t=check`` and ``t=stream-deep-check`` (``verify``, ``repair``, ``add-lease``)
call ``veil.services.checker.check`` once per object and answer in Tahoe's
shapes (``json_check_results``, ``json_check_and_repair_results``);
``t=start-deep-check&ophandle=H`` runs them in the background (results at
``/operations/H`` in Tahoe's deep-check JSON, ``wapi_deep_check``);
``start-deep-stats`` and ``start-deep-size`` give the manifest's totals only.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from veil.adapters.web.wapi_deep_stats import DeepStats
from veil.adapters.web.wapi_errors import WebError, not_implemented
from veil.adapters.web.wapi_nodes import Node
from veil.adapters.web.wapi_requests import Args
from veil.adapters.web.wapi_session import GatewaySession
from veil.errors import VeilError
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, CHKVerifyCap, LiteralCap

CHECKABLE = (mc.SSKWriteCap, mc.SSKReadCap, mc.SSKVerifyCap, CHKReadCap, CHKVerifyCap, LiteralCap)

DIRECTORY_OPERATIONS = (
    "check",
    "start-deep-check",
    "stream-deep-check",
    "start-manifest",
    "stream-manifest",
    "start-deep-size",
    "start-deep-stats",
)
MAX_OPERATIONS = 100  # kept in memory per gateway; the oldest finished ones go first


async def walk(
    session: GatewaySession, root: Node, stats: DeepStats | None = None
) -> AsyncGenerator[tuple[list[str], Node]]:
    """Every node below ``root``: itself, then each directory's children in name order
    before the directories below them (Tahoe's order), each directory read once."""
    seen: set[bytes] = set()
    yield [], root
    pending: list[tuple[list[str], Node]] = [([], root)] if root.is_dir else []
    while pending:
        path, node = pending.pop(0)
        si = node.storage_index()
        if si is not None and si in seen:
            continue
        if si is not None:
            seen.add(si)
        assert isinstance(node.cap, mc.DirCap)
        kids, size = await session.listing(node)
        if stats is not None:
            stats.enter_directory(size, len(kids))
        below = []
        for name in sorted(kids):
            child = Node.from_entry(kids[name], node.cap, name)
            yield [*path, name], child
            if child.is_dir:
                below.append(([*path, name], child))
        pending[:0] = below


def manifest_line(path: list[str], node: Node) -> dict[str, Any]:
    kind = "unknown" if node.is_unknown else "directory" if node.is_dir else "file"
    verify = node.verify_uri() or ""
    return {
        "path": path,
        "cap": node.uri(),
        "type": kind,
        "verifycap": verify,
        "repaircap": (node.write_uri() or verify) if node.is_mutable else verify,
        "storage-index": node.storage_index_text(),
    }


async def stream_manifest(
    session: GatewaySession, request: web.Request, node: Node
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    stats = DeepStats()
    lines = walk(session, node, stats)
    try:
        first = await anext(lines)  # the root, before the status line goes out
        await response.prepare(request)
        path, here = first
        while True:
            stats.add_node(here)
            await response.write(
                json.dumps(manifest_line(path, here), ensure_ascii=True).encode() + b"\n"
            )
            try:
                path, here = await anext(lines)
            except StopAsyncIteration:
                break
        await response.write(
            json.dumps({"type": "stats", "stats": stats.result()}).encode() + b"\n"
        )
    except VeilError as exc:
        if not response.prepared:
            raise
        await response.write(f"ERROR: {type(exc).__name__}({exc})\n".encode())
    finally:
        await lines.aclose()
    return response


@dataclass
class Operation:
    kind: str
    started: float = field(default_factory=time.time)
    finished: bool = False
    manifest: list[dict[str, Any]] = field(default_factory=list)
    stats: DeepStats = field(default_factory=DeepStats)
    error: str | None = None
    task: asyncio.Task[None] | None = None
    checked: list[tuple[list[str], dict[str, Any]]] = field(default_factory=list)
    root_si: str = ""

    def status_json(self) -> dict[str, Any]:
        """Tahoe's ``ManifestResults`` / ``DeepCheckResultsRenderer`` JSON."""
        if self.kind == "deep-stats":
            return {**self.stats.result(), "finished": self.finished}
        if self.kind == "deep-size":
            return {"finished": self.finished, "size": self.stats.result()}
        if self.kind.startswith("deep-check"):
            from veil.adapters.web.wapi_deep_check import deep_check_json

            out = deep_check_json(self.kind, self.finished, self.root_si, self.checked)
        else:
            out = {"finished": self.finished, "origin": self.root_si}
            out["manifest"] = [[m["path"], m["cap"]] for m in self.manifest]
            out["verifycaps"] = sorted({m["verifycap"] for m in self.manifest if m["verifycap"]})
            out["storage-index"] = sorted(
                {m["storage-index"] for m in self.manifest if m["storage-index"]}
            )
        out["stats"] = self.stats.result()
        if self.error is not None:
            out["error"] = self.error
        return out


class Operations:
    """Handles (``ophandle=``) of background operations, in memory, as Tahoe's."""

    def __init__(self) -> None:
        self.ops: dict[str, Operation] = {}

    def start(
        self, handle: str, op: Operation, work: Callable[[Operation], Awaitable[None]]
    ) -> None:
        """Run ``work(op)`` in the background under ``handle`` (``/operations/HANDLE``)."""
        if handle in self.ops:
            raise WebError(f"there is already an operation with ophandle={handle}", 400)

        async def run() -> None:
            try:
                await work(op)
            except VeilError as exc:
                op.error = str(exc)
            finally:
                op.finished = True

        op.task = asyncio.ensure_future(run())
        self.ops[handle] = op
        while len(self.ops) > MAX_OPERATIONS:
            oldest = next((h for h, o in self.ops.items() if o.finished), None)
            if oldest is None:
                break
            del self.ops[oldest]

    def start_manifest(
        self, session: GatewaySession, handle: str, node: Node, kind: str = "manifest"
    ) -> None:
        """A manifest (or, with ``kind`` deep-stats / deep-size, only its totals)."""

        async def work(op: Operation) -> None:
            async for path, here in walk(session, node, op.stats):
                op.stats.add_node(here)
                if kind == "manifest":
                    op.manifest.append(manifest_line(path, here))

        op = Operation(kind)
        op.root_si = node.storage_index_text()
        self.start(handle, op, work)

    def start_deep_check(
        self, session: GatewaySession, handle: str, node: Node, args: Args
    ) -> None:
        repair = args.flag("repair")

        async def work(op: Operation) -> None:
            async for path, here in walk(session, node, op.stats):
                op.stats.add_node(here)
                results = await check_node(session, here, args)
                if results.get("storage-index"):  # as Tahoe, LIT objects are not counted
                    op.checked.append((path, results))

        op = Operation("deep-check-and-repair" if repair else "deep-check")
        op.root_si = node.storage_index_text()
        self.start(handle, op, work)

    async def close(self) -> None:
        for op in self.ops.values():
            if op.task is not None and not op.task.done():
                op.task.cancel()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        handle = request.match_info["handle"]
        op = self.ops.get(handle)
        if op is None:
            raise WebError(f"unknown/expired handle '{handle}'", 404)
        if request.method == "POST" and request.query.get("t") == "cancel":
            if op.task is not None:
                op.task.cancel()
            op.finished = True
        if request.query.get("release-after-complete", "").lower() == "true" and op.finished:
            self.ops.pop(handle, None)
        return web.Response(
            text=json.dumps(op.status_json(), indent=1) + "\n", content_type="text/plain"
        )


OPERATIONS = web.AppKey("veil.operations", Operations)


async def directory_operation(
    session: GatewaySession, request: web.Request, node: Node, args: Args
) -> web.StreamResponse:
    t = args.t
    if t == "stream-manifest":
        return await stream_manifest(session, request, node)
    if t in ("start-manifest", "start-deep-stats", "start-deep-size"):
        handle = args.get("ophandle")
        if not handle:
            raise WebError("slow operation requires ophandle=", 400)
        ops: Operations = request.app[OPERATIONS]
        ops.start_manifest(session, handle, node, t.removeprefix("start-"))
        raise web.HTTPFound(f"/operations/{handle}?t=status&output=JSON")
    if t == "start-deep-check":
        handle = args.get("ophandle")
        if not handle:
            raise WebError("slow operation requires ophandle=", 400)
        request.app[OPERATIONS].start_deep_check(session, handle, node, args)
        raise web.HTTPFound(f"/operations/{handle}?t=status&output=JSON")
    if t == "check":
        return await check(session, request, node, args)
    if t == "stream-deep-check":
        return await stream_deep_check(session, request, node, args)
    raise not_implemented(f"t={t}")


async def check_node(session: GatewaySession, node: Node, args: Args) -> dict[str, Any]:
    """One object checked (and, with ``repair``, repaired) by ``veil.services.checker``."""
    from veil.services.checker import check as check_object

    if node.is_unknown or not isinstance(node.cap, (mc.DirCap, *CHECKABLE)):
        raise WebError("this cap cannot be checked (it is of a kind veil does not know)", 400)
    report = await check_object(
        await session.client(),
        node.cap,
        verify=args.flag("verify"),
        repair=args.flag("repair"),
        add_lease=args.flag("add-lease"),
    )
    return report.to_tahoe_json()


async def check(
    session: GatewaySession, request: web.Request, node: Node, args: Args
) -> web.StreamResponse:
    """``POST ?t=check`` (``verify``, ``repair``, ``add-lease``, ``output=JSON``)."""
    results = await check_node(session, node, args)
    if args.text("output").lower() == "json":
        return web.Response(
            body=json.dumps(results, indent=1).encode() + b"\n",
            headers={"Content-Type": "text/plain"},
        )
    final = results.get("post-repair-results", results)
    healthy = final.get("results", {}).get("healthy")
    summary = final.get("summary", "Healthy" if healthy else "Not Healthy")
    page = (
        "<!DOCTYPE html>\n<html><head><title>Tahoe-LAFS - Check Results</title></head><body>"
        f"<h1>File Check Results for SI={html.escape(results.get('storage-index', ''))}</h1>"
        f"<p>{'Healthy' if healthy else 'Not Healthy'} : {html.escape(str(summary))}</p>"
        "</body></html>\n"
    )
    return web.Response(text=page, content_type="text/html")


async def stream_deep_check(
    session: GatewaySession, request: web.Request, node: Node, args: Args
) -> web.StreamResponse:
    """``POST DIR?t=stream-deep-check``: one line per node with its check (and repair)
    results, then the stats line, as Tahoe's ``DeepCheckStreamer``."""
    key = "check-and-repair-results" if args.flag("repair") else "check-results"
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    stats = DeepStats()
    nodes = walk(session, node, stats)
    try:
        async for path, here in nodes:
            stats.add_node(here)
            line = manifest_line(path, here)
            line[key] = await check_node(session, here, args)
            if not response.prepared:
                await response.prepare(request)
            await response.write(json.dumps(line, ensure_ascii=True).encode() + b"\n")
        end = {"type": "stats", "stats": stats.result()}
        await response.write(json.dumps(end).encode() + b"\n")
    except VeilError as exc:
        if not response.prepared:
            raise
        await response.write(f"ERROR: {type(exc).__name__}({exc})\n".encode())
    finally:
        await nodes.aclose()
    return response
