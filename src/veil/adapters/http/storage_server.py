"""Tahoe's HTTP storage protocol (GBS) over HTTPS, serving a ``StorageService``.

Only decoding, validation and encoding live here; every decision is the core's
(``veil.services.interfaces.StorageService``). Status codes follow what a real
Tahoe 1.20 server answers (digest §5.3-5.6, tests/data/vectors/http_probe.txt):
an unknown path 404/405 before anything else, 401 bad Authorization, 400 bad
secrets or body, 415 non-CBOR body, 413 oversized body, 416 bad ranges, 406
when the answer cannot be CBOR (checked when it is encoded, as Tahoe does),
and the core's own codes.

Besides the announced swissnum (account 0, anonymous) the server accepts the
swissnum of every account the operator made (``AccountLookup``, kept by
``veil.adapters.node.accounts``): the request then acts for that account, whose
number the calls that make leases pass to the core.

The core is synchronous and may touch disks (fsync), so by default every call
runs on one worker thread owned by the app: the event loop keeps serving, and
calls stay serialized in arrival order.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hmac
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web

from veil.adapters.http.batch_routes import add_batch_routes
from veil.adapters.http.connection_guard import ConnectionLimits, GuardedRunner
from veil.adapters.http.request_parsing import (
    CANCEL,
    RENEW,
    UPLOAD,
    WRITE_ENABLER,
    acceptable,
    cbor,
    cbor_body,
    read_exactly,
    secrets_of,
    text,
)
from veil.adapters.net.tcp import NetworkProvider, TcpProvider
from veil.errors import StorageError, Unauthorized, VeilError
from veil.formats import base32, wire, wire_mutable
from veil.services.interfaces import StorageService

log = logging.getLogger(__name__)

MAX_PATCH_BODY = 16 * 1024 * 1024  # one PATCH; Tahoe clients send about 1 MB
STREAM_CHUNK = 1024 * 1024  # reads larger than this are streamed
_SI = "{si:[a-z2-7]{25}[aeimquy4]}"
_SHNUM = "{shnum:[0-9]{1,3}}"
_RANGE = re.compile(r"^bytes=([0-9]{1,19})-([0-9]{1,19})\Z")
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,19})-([0-9]{1,19})/(\*|[0-9]{1,19})\Z")
MAX_MUTABLE_READ = 64 * 1024 * 1024  # one ranged read of a mutable share
OCTETS = "application/octet-stream"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
Deferred = tuple[T, Callable[[], None]]  # a result, and the flush that makes it durable


_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
ACCOUNT = web.RequestKey("veil.account", int)  # the request's account, set by the guard


def authorization(swissnum: str) -> bytes:
    """The ``Authorization`` header a client presents for ``swissnum``."""
    return ("Tahoe-LAFS " + base64.b64encode(swissnum.encode()).decode()).encode()


class AccountLookup(Protocol):
    def account_of(self, authorization: bytes) -> int | None:
        """The account whose swissnum this header carries, or None."""
        ...


class StorageHTTPApp:
    """The aiohttp application for one storage service and swissnum."""

    def __init__(
        self,
        service: StorageService,
        swissnum: str,
        *,
        offload: bool = True,
        max_patch_body: int = MAX_PATCH_BODY,
        accounts: AccountLookup | None = None,
    ) -> None:
        self.service = service
        self._auth = authorization(swissnum)
        self._accounts = accounts
        self._pool = ThreadPoolExecutor(1, "veil-storage") if offload else None
        # flushes of batches wait on the disk beside the core's one thread (group commit)
        self._flush_pool = ThreadPoolExecutor(4, "veil-flush") if offload else None
        self.max_patch_body = max_patch_body
        self._submitted = 0  # core calls handed to its thread (written by the event loop)
        self._finished = 0  # and done there (written by the core's thread)

    async def _core(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._pool is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        self._submitted += 1
        return await loop.run_in_executor(self._pool, self._counted, fn, args, kwargs)

    def _counted(self, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            self._finished += 1  # in the core's thread, as soon as the call is over

    def _core_calls_waiting(self) -> int:
        """Core calls submitted and not finished (each counter has one writer)."""
        return self._submitted - self._finished

    async def _durably(self, work: Callable[[], Deferred[T]], *, small: bool) -> T:
        """Run ``work`` (which returns its result and the flush that makes it durable)
        in the core's thread, and answer once the flush is done. A small flush with no
        other core call waiting runs in the same turn of the core's thread (one thread
        hop, not two: a fifth of a small request's CPU); otherwise in the flush pool,
        while the core's thread goes on with the next call (group commit)."""
        if self._pool is None or self._flush_pool is None:
            result, flush = work()
            flush()
            return result

        def then_flush_if_alone() -> tuple[T, Callable[[], None] | None]:
            result, flush = work()
            if small and self._core_calls_waiting() <= 1:  # this one: nothing behind it
                flush()
                return result, None
            return result, flush

        result, pending = await self._core(then_flush_if_alone)
        if pending is not None:
            await asyncio.get_running_loop().run_in_executor(self._flush_pool, pending)
        return result

    async def _shutdown(self, app: web.Application) -> None:
        for pool in (self._pool, self._flush_pool):
            if pool is not None:
                await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=wire.MAX_CORRUPT_BODY, middlewares=[self._guard])
        app.on_cleanup.append(self._shutdown)
        v1 = "/storage/v1"
        app.router.add_get(f"{v1}/version", self.version)
        app.router.add_post(f"{v1}/immutable/{_SI}", self.allocate)
        app.router.add_get(f"{v1}/immutable/{_SI}/shares", self.list_shares)
        app.router.add_patch(f"{v1}/immutable/{_SI}/{_SHNUM}", self.write)
        app.router.add_put(f"{v1}/immutable/{_SI}/{_SHNUM}/abort", self.abort)
        app.router.add_get(f"{v1}/immutable/{_SI}/{_SHNUM}", self.read, allow_head=False)
        app.router.add_post(f"{v1}/immutable/{_SI}/{_SHNUM}/corrupt", self.corrupt)
        app.router.add_put(f"{v1}/lease/{_SI}", self.lease)
        app.router.add_post(f"{v1}/mutable/{_SI}/read-test-write", self.read_test_write)
        app.router.add_get(f"{v1}/mutable/{_SI}/shares", self.mutable_shares)
        app.router.add_get(f"{v1}/mutable/{_SI}/{_SHNUM}", self.mutable_read, allow_head=False)
        app.router.add_post(f"{v1}/mutable/{_SI}/{_SHNUM}/corrupt", self.mutable_corrupt)
        add_batch_routes(app, self.service, self._core, self._durably, ACCOUNT)  # veil's extension
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # no such route: 404/405 come first, as in Tahoe
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        account = 0 if hmac.compare_digest(given, self._auth) else None
        if account is None and self._accounts is not None:
            account = self._accounts.account_of(given)
        if account is None:
            return text(401, "Wrong Authorization header")
        request[ACCOUNT] = account
        try:
            return await handler(request)
        except StorageError as exc:
            return text(exc.status, str(exc))
        except OSError as exc:
            log.error("storage I/O error: %s", exc)
            if exc.errno in _NO_SPACE:
                return text(507, "the server could not store the data: its storage is full")
            # a failing disk or object store: the client tries another server
            return text(503, "the server's storage is not working; try another server")
        except VeilError as exc:  # a fault of the server's own data: one line, no traceback
            log.error("storage request %s failed: %s", request.match_info.route.name or "", exc)
            return text(500, "the server could not read its data")

    @staticmethod
    def _where(request: web.Request) -> tuple[bytes, int]:
        return base32.a2b(request.match_info["si"]), int(request.match_info.get("shnum", "0"))

    async def version(self, request: web.Request) -> web.Response:
        if not acceptable(request.headers.get("Accept")):
            return text(406)
        return cbor(request, wire.encode_version(await self._core(self.service.get_version)))

    async def allocate(self, request: web.Request) -> web.Response:
        secrets = secrets_of(request, frozenset({RENEW, CANCEL, UPLOAD}))
        body = await cbor_body(request, wire.MAX_ALLOCATE_BODY)
        shares, size = wire.decode_allocate_request(body)
        result = await self._core(
            self.service.allocate_buckets,
            self._where(request)[0],
            shares,
            size,
            renew_secret=secrets[RENEW],
            cancel_secret=secrets[CANCEL],
            upload_secret=secrets[UPLOAD],
            account=request[ACCOUNT],
        )
        return cbor(request, wire.encode_allocate_result(result))

    async def write(self, request: web.Request) -> web.Response:
        secrets = secrets_of(request, frozenset({UPLOAD}))
        m = _CONTENT_RANGE.match(request.headers.get("Content-Range", ""))
        if not m or int(m[2]) < int(m[1]) or (m[3] != "*" and int(m[3]) <= int(m[2])):
            return text(416, "a PATCH needs Content-Range: bytes a-b/*")
        start, end = int(m[1]), int(m[2]) + 1
        if end - start > self.max_patch_body:
            return text(413, f"a PATCH may carry at most {self.max_patch_body} bytes")
        declared = request.content_length
        if declared is not None and declared < end - start:
            return text(500, "the body is shorter than its Content-Range")
        data = await read_exactly(request, end - start)
        if data is None:
            return text(500, "the body is shorter than its Content-Range")
        si, shnum = self._where(request)
        result = await self._core(
            self.service.write_share_chunk, si, shnum, start, data, upload_secret=secrets[UPLOAD]
        )
        return cbor(request, wire.encode_write_result(result), 201 if result.complete else 200)

    async def abort(self, request: web.Request) -> web.Response:
        secrets = secrets_of(request, frozenset({UPLOAD}))
        si, shnum = self._where(request)
        await self._core(self.service.abort_upload, si, shnum, upload_secret=secrets[UPLOAD])
        return text(200)

    async def list_shares(self, request: web.Request) -> web.Response:
        shares = await self._core(self.service.list_shares, self._where(request)[0])
        return cbor(request, wire.encode_share_list(shares))

    async def read(self, request: web.Request) -> web.StreamResponse:
        si, shnum = self._where(request)
        length = await self._core(self.service.share_length, si, shnum)
        header = request.headers.get("Range")
        if header is None:
            return await self._send(request, si, shnum, 0, length, 200)
        m = _RANGE.match(header.strip())
        if not m or int(m[2]) < int(m[1]):
            return text(416, "only a single bounded byte range is supported")
        start, stop = int(m[1]), min(int(m[2]) + 1, length)
        if start >= length:
            return web.Response(status=204, content_type=OCTETS)
        return await self._send(request, si, shnum, start, stop, 206)

    async def _send(
        self, request: web.Request, si: bytes, shnum: int, start: int, stop: int, status: int
    ) -> web.StreamResponse:
        """Bytes [start, stop) of a finished share; streamed if large."""
        headers = {"Content-Range": f"bytes {start}-{stop - 1}/*"} if status == 206 else {}
        if stop - start <= STREAM_CHUNK:
            data = await self._core(self.service.read_share_chunk, si, shnum, start, stop - start)
            return web.Response(status=status, body=data, content_type=OCTETS, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = OCTETS
        response.content_length = stop - start
        await response.prepare(request)
        pos = start
        while pos < stop:
            n = min(STREAM_CHUNK, stop - pos)
            chunk = await self._core(self.service.read_share_chunk, si, shnum, pos, n)
            if len(chunk) != n:
                raise ConnectionResetError("share changed length while being read")
            await response.write(chunk)
            pos += n
        await response.write_eof()
        return response

    async def corrupt(self, request: web.Request) -> web.Response:
        reason = wire.decode_corrupt_request(await cbor_body(request, wire.MAX_CORRUPT_BODY))
        si, shnum = self._where(request)
        await self._core(self.service.advise_corrupt_share, si, shnum, reason)
        return text(200)

    # -- mutable ------------------------------------------------------------------

    async def read_test_write(self, request: web.Request) -> web.Response:
        secrets = secrets_of(request, frozenset({WRITE_ENABLER, RENEW, CANCEL}))
        body = await cbor_body(request, wire_mutable.MAX_RTW_BODY)
        vectors, reads = wire_mutable.decode_rtw_request(body)
        try:
            result = await self._core(
                self.service.mutable_read_test_write,
                self._where(request)[0],
                vectors,
                reads,
                write_enabler=secrets[WRITE_ENABLER],
                renew_secret=secrets[RENEW],
                cancel_secret=secrets[CANCEL],
                account=request[ACCOUNT],
            )
        except Unauthorized:
            return web.Response(status=401)  # Tahoe answers a wrong write enabler with no body
        return cbor(request, wire_mutable.encode_rtw_result(result))

    def _mutable_range(
        self, si: bytes, shnum: int, want: tuple[int, int] | None
    ) -> tuple[int, bytes] | int | None:
        """The share's length and bytes in one turn of the core: where they start
        and the bytes; None past the end; the length alone when too much is asked."""
        length = self.service.mutable_share_length(si, shnum)
        start, stop = (0, length) if want is None else (want[0], min(want[1], length))
        if want is not None and start >= length:
            return None
        if stop - start > MAX_MUTABLE_READ:
            return length
        return start, self.service.mutable_read(si, shnum, start, stop - start)

    async def mutable_shares(self, request: web.Request) -> web.Response:
        shares = await self._core(self.service.mutable_list_shares, self._where(request)[0])
        return cbor(request, wire.encode_share_list(shares))

    async def mutable_read(self, request: web.Request) -> web.Response:
        si, shnum = self._where(request)
        header = request.headers.get("Range")
        want: tuple[int, int] | None = None
        if header is not None:
            m = _RANGE.match(header.strip())
            if not m or int(m[2]) < int(m[1]):
                return text(416, "only a single bounded byte range is supported")
            want = (int(m[1]), int(m[2]) + 1)
        answer = await self._core(self._mutable_range, si, shnum, want)
        if answer is None:
            return web.Response(status=204, content_type=OCTETS)
        if isinstance(answer, int):
            return text(416, f"read at most {MAX_MUTABLE_READ} bytes at a time")
        start, data = answer
        status = 200 if want is None else 206
        headers = (
            {"Content-Range": f"bytes {start}-{start + len(data) - 1}/*"} if status == 206 else {}
        )
        return web.Response(status=status, body=data, content_type=OCTETS, headers=headers)

    async def mutable_corrupt(self, request: web.Request) -> web.Response:
        reason = wire.decode_corrupt_request(await cbor_body(request, wire.MAX_CORRUPT_BODY))
        si, shnum = self._where(request)
        await self._core(self.service.mutable_advise_corrupt, si, shnum, reason)
        return text(200)

    async def lease(self, request: web.Request) -> web.Response:
        secrets = secrets_of(request, frozenset({RENEW, CANCEL}))
        await self._core(
            self.service.add_or_renew_lease,
            self._where(request)[0],
            renew_secret=secrets[RENEW],
            cancel_secret=secrets[CANCEL],
            account=request[ACCOUNT],
        )
        return text(204)


@dataclass
class RunningServer:
    """A started aiohttp runner and the port it listens on."""

    runner: web.BaseRunner
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
    network: NetworkProvider | None = None,
    offload: bool = True,
    limits: ConnectionLimits | None = None,
    accounts: AccountLookup | None = None,
) -> RunningServer:
    """Serve ``service`` over HTTPS on ``host:port`` (0 picks a free port) until ``stop``.

    TLS is done by the connection guard (``veil.adapters.http.connection_guard``),
    which bounds handshakes, idle connections and their number; the site itself
    listens in the clear."""
    limits = limits or ConnectionLimits()
    app = StorageHTTPApp(service, swissnum, offload=offload, accounts=accounts).make_app()
    runner = GuardedRunner(
        app,
        ssl_context,
        limits,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=limits.idle_timeout,
    )
    await runner.setup()
    try:
        address = await (network or TcpProvider()).listen(
            runner, host=host, port=port, ssl_context=None
        )
    except BaseException:
        await runner.cleanup()
        raise
    return RunningServer(runner, address.port)
