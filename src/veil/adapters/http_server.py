"""Tahoe's HTTP storage protocol (GBS) over HTTPS, serving a ``StorageService``.

Only decoding, validation and encoding live here; every decision is the core's
(``veil.services.storage_server``). Status codes follow what a real Tahoe 1.20
server answers (digest §5.3-5.6, tests/data/vectors/http_probe.txt):
401 bad Authorization, 400 bad secrets or body, 406 unacceptable Accept,
415 non-CBOR body, 413 oversized body, 416 bad ranges, and the core's codes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from veil.errors import BadRequest, StorageError
from veil.formats import base32, wire
from veil.services.interfaces import StorageService

log = logging.getLogger(__name__)

MAX_PATCH_BODY = 16 * 1024 * 1024
_SI = "{si:[a-z2-7]{25}[aqiyemu4]}"
_SHNUM = "{shnum:[0-9]{1,3}}"
_RANGE = re.compile(r"^bytes=(\d{1,19})-(\d{1,19})$")
_CONTENT_RANGE = re.compile(r"^bytes (\d{1,19})-(\d{1,19})/(\*|\d{1,19})$")
LEASE_KINDS = frozenset({"lease-renew-secret", "lease-cancel-secret"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message)


def _acceptable(request: web.Request) -> bool:
    """True unless the best media type in Accept is not application/cbor."""
    header = request.headers.get("Accept")
    if header is None:
        return True
    best_q, cbor_q = -1.0, 0.0
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        best_q = max(best_q, q)
        if fields[0].lower() == wire.CBOR:
            cbor_q = max(cbor_q, q)
    return cbor_q > 0 and cbor_q >= best_q


def _cbor(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type=wire.CBOR)


def _secrets(request: web.Request, required: frozenset[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for value in request.headers.getall("X-Tahoe-Authorization", []):
        kind, _, encoded = value.strip().partition(" ")
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"bad base64 in X-Tahoe-Authorization {kind}") from None
        if not secret:
            raise BadRequest(f"empty {kind}")
        found[kind] = secret
    if set(found) != required:
        raise BadRequest(f"Expected {sorted(required)} in X-Tahoe-Authorization headers")
    for kind in LEASE_KINDS & required:
        if len(found[kind]) != 32:
            raise BadRequest(f"{kind} must be 32 bytes")
    return found


async def _body(request: web.Request, limit: int) -> bytes:
    ctype = request.headers.get("Content-Type")
    if ctype is not None and ctype.split(";")[0].strip().lower() != wire.CBOR:
        raise web.HTTPUnsupportedMediaType(text="request bodies must be application/cbor")
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    chunks, size = [], 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
    return b"".join(chunks)


@dataclass
class StorageHTTPApp:
    """The aiohttp application for one storage service and swissnum."""

    service: StorageService
    swissnum: str

    def __post_init__(self) -> None:
        self._auth = "Tahoe-LAFS " + base64.b64encode(self.swissnum.encode()).decode()

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_PATCH_BODY, middlewares=[self._middleware])
        v1 = "/storage/v1"
        app.router.add_get(f"{v1}/version", self.version)
        app.router.add_post(f"{v1}/immutable/{_SI}", self.allocate)
        app.router.add_get(f"{v1}/immutable/{_SI}/shares", self.list_shares)
        app.router.add_patch(f"{v1}/immutable/{_SI}/{_SHNUM}", self.write)
        app.router.add_put(f"{v1}/immutable/{_SI}/{_SHNUM}/abort", self.abort)
        app.router.add_get(f"{v1}/immutable/{_SI}/{_SHNUM}", self.read)
        app.router.add_post(f"{v1}/immutable/{_SI}/{_SHNUM}/corrupt", self.corrupt)
        app.router.add_put(f"{v1}/lease/{_SI}", self.lease)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), self._auth.encode()):
            return _text(401, "Wrong Authorization header")
        try:
            return await handler(request)
        except StorageError as exc:
            return _text(exc.status, str(exc))
        except OSError as exc:
            log.error("storage I/O error: %s", exc)
            return _text(507, "the server could not store the data")

    @staticmethod
    def _si(request: web.Request) -> bytes:
        return base32.a2b(request.match_info["si"])

    async def version(self, request: web.Request) -> web.Response:
        if not _acceptable(request):
            return _text(406, "only application/cbor is offered")
        return _cbor(wire.encode_version(self.service.get_version()))

    async def allocate(self, request: web.Request) -> web.Response:
        secrets = _secrets(request, LEASE_KINDS | {"upload-secret"})
        shares, size = wire.decode_allocate_request(await _body(request, wire.MAX_ALLOCATE_BODY))
        result = self.service.allocate_buckets(
            self._si(request),
            shares,
            size,
            renew_secret=secrets["lease-renew-secret"],
            cancel_secret=secrets["lease-cancel-secret"],
            upload_secret=secrets["upload-secret"],
        )
        if not _acceptable(request):
            return _text(406, "only application/cbor is offered")
        return _cbor(wire.encode_allocate_result(result))

    async def write(self, request: web.Request) -> web.Response:
        secrets = _secrets(request, frozenset({"upload-secret"}))
        m = _CONTENT_RANGE.match(request.headers.get("Content-Range", ""))
        if not m or int(m[2]) < int(m[1]):
            return _text(416, "a PATCH needs Content-Range: bytes a-b/*")
        start, end = int(m[1]), int(m[2]) + 1
        if end - start > MAX_PATCH_BODY:
            return _text(413, "chunk too large")
        try:
            data = await request.content.readexactly(end - start)
        except asyncio.IncompleteReadError:
            return _text(500, "the body is shorter than its Content-Range")
        result = self.service.write_share_chunk(
            self._si(request),
            int(request.match_info["shnum"]),
            start,
            data,
            upload_secret=secrets["upload-secret"],
        )
        return _cbor(wire.encode_write_result(result), 201 if result.complete else 200)

    async def abort(self, request: web.Request) -> web.Response:
        secrets = _secrets(request, frozenset({"upload-secret"}))
        self.service.abort_upload(
            self._si(request),
            int(request.match_info["shnum"]),
            upload_secret=secrets["upload-secret"],
        )
        return web.Response(status=200)

    async def list_shares(self, request: web.Request) -> web.Response:
        if not _acceptable(request):
            return _text(406, "only application/cbor is offered")
        return _cbor(wire.encode_share_list(self.service.list_shares(self._si(request))))

    async def read(self, request: web.Request) -> web.Response:
        si, shnum = self._si(request), int(request.match_info["shnum"])
        header = request.headers.get("Range")
        if header is None:
            total = self.service.share_length(si, shnum)
            data = self.service.read_share_chunk(si, shnum, 0, total)
            return web.Response(body=data, content_type="application/octet-stream")
        m = _RANGE.match(header)
        if not m or int(m[2]) < int(m[1]):
            return _text(416, "only a single bounded byte range is supported")
        start, stop = int(m[1]), int(m[2]) + 1
        data = self.service.read_share_chunk(si, shnum, start, stop - start)
        if not data:
            return web.Response(status=204)
        return web.Response(
            status=206,
            body=data,
            content_type="application/octet-stream",
            headers={"Content-Range": f"bytes {start}-{start + len(data) - 1}/*"},
        )

    async def corrupt(self, request: web.Request) -> web.Response:
        reason = wire.decode_corrupt_request(await _body(request, wire.MAX_CORRUPT_BODY))
        self.service.advise_corrupt_share(
            self._si(request), int(request.match_info["shnum"]), reason
        )
        return web.Response(status=200)

    async def lease(self, request: web.Request) -> web.Response:
        secrets = _secrets(request, LEASE_KINDS)
        self.service.add_or_renew_lease(
            self._si(request),
            renew_secret=secrets["lease-renew-secret"],
            cancel_secret=secrets["lease-cancel-secret"],
        )
        return web.Response(status=204)


@dataclass
class RunningServer:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_storage_http(
    service: StorageService,
    swissnum: str,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
) -> RunningServer:
    """Listen on ``host:port`` (0 picks a free port) and serve until ``stop``."""
    runner = web.AppRunner(
        StorageHTTPApp(service, swissnum).make_app(), access_log=None, handle_signals=False
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    await asyncio.sleep(0)
    return RunningServer(runner, bound)
