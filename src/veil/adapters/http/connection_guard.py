"""Bounds on the storage listener's connections: slowloris and connection floods.

aiohttp's server alone does not bound them: ``keepalive_timeout`` (75 s, or
3630 s since 3.10) is the only timer, a request head trickled a byte at a
time is not timed on older releases, nothing limits how many connections are
open, and asyncio's TLS handshake timeout (60 s) cannot be set through
``web.TCPSite``. So ``GuardedRunner`` serves an app with a protocol factory
that does TLS itself (asyncio's own ``SSLProtocol``, with a handshake timeout)
and keeps, per connection, when it was last busy:

- a new connection must finish its TLS handshake and send a complete request
  head within ``head_timeout`` seconds of being accepted, and a kept-alive one
  its next request head within ``idle_timeout`` of the previous response; then
  it is closed (a request in progress is never cut by these timers; its body
  reads have their own timeout in ``veil.adapters.http.storage_server``);
- at most ``max_connections`` are open: a new one first pushes out the one
  that has been idle longest after its handshake (a trickler, an idle
  keep-alive connection; one still in its handshake only if there is none),
  and is refused only when every other one is in a request. A client that sends
  its request at once is served however many tricklers there are.

Not for: what is answered (``veil.adapters.http.storage_server``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from asyncio.sslproto import SSLProtocol
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 512
    head_timeout: float = 20.0  # accept -> TLS done and a whole request head
    idle_timeout: float = 60.0  # a response -> the next whole request head
    tls_shutdown_timeout: float = 5.0


class _Connection:
    def __init__(self, guard: GuardedServer, handler: RequestHandler) -> None:
        self.guard = guard
        self.handler = handler
        self.transport: Any = None  # the socket's transport: abort() closes it at once
        self.busy = 0
        self.established = False  # TLS done
        self.idle_since = guard.loop.time()
        self.timer: asyncio.TimerHandle | None = None

    def wait(self, timeout: float) -> None:
        """Idle from now: closed unless a request head arrives within ``timeout``."""
        self.idle_since = self.guard.loop.time()
        self.cancel_timer()
        self.timer = self.guard.loop.call_later(timeout, self.expire)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def expire(self) -> None:
        self.timer = None
        if not self.busy:
            self.guard.timeouts += 1
            self.abort()

    def abort(self) -> None:
        self.cancel_timer()
        if self.transport is not None:
            self.transport.abort()


class _GuardedTLS(SSLProtocol):
    """asyncio's server-side TLS layer, telling the guard when a socket comes and goes."""

    def __init__(self, connection: _Connection, context: ssl.SSLContext, timeout: float) -> None:
        waiter = connection.guard.loop.create_future()  # a failed handshake is no news
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        super().__init__(
            connection.guard.loop,
            connection.handler,
            context,
            waiter,
            server_side=True,
            ssl_handshake_timeout=math.ceil(timeout),
            ssl_shutdown_timeout=math.ceil(connection.guard.limits.tls_shutdown_timeout),
        )
        self.connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connection.transport = transport  # asyncio's or uvloop's (not an asyncio.Transport)
        if self.connection.guard.admit(self.connection):
            super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.connection.guard.forget(self.connection)
        super().connection_lost(exc)


class GuardedServer(web.Server):
    """aiohttp's low-level server with ``ConnectionLimits`` on every connection."""

    def __init__(
        self, inner: web.Server, context: ssl.SSLContext, limits: ConnectionLimits
    ) -> None:
        super().__init__(
            self._tracked(inner.request_handler),
            request_factory=inner.request_factory,
            handler_cancellation=inner.handler_cancellation,
            **getattr(inner, "_kwargs", {}),
        )
        self.loop = asyncio.get_running_loop()
        self.context = context
        self.limits = limits
        self.open: dict[RequestHandler, _Connection] = {}
        self.timeouts = self.evicted = self.refused = 0

    def __call__(self) -> Any:  # the protocol factory of the listening socket
        connection = _Connection(self, super().__call__())
        connection.wait(self.limits.head_timeout)
        return _GuardedTLS(connection, self.context, self.limits.head_timeout)

    def admit(self, connection: _Connection) -> bool:
        if len(self.open) >= self.limits.max_connections:
            idle = [c for c in self.open.values() if not c.busy]
            if not idle:
                self.refused += 1
                connection.abort()
                return False
            if not self.evicted:
                log.warning(
                    "%d connections open: the longest idle ones are closed for new ones",
                    self.limits.max_connections,
                )
            self.evicted += 1
            victim = min(idle, key=lambda c: (not c.established, c.idle_since))
            self.forget(victim)
            victim.abort()
        self.open[connection.handler] = connection
        return True

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        connection = self.open.get(handler)
        if connection is not None:
            connection.established = True

    def forget(self, connection: _Connection) -> None:
        connection.cancel_timer()
        self.open.pop(connection.handler, None)

    def _tracked(
        self, handle: Callable[[Any], Awaitable[web.StreamResponse]]
    ) -> Callable[[Any], Awaitable[web.StreamResponse]]:
        async def tracked(request: Any) -> web.StreamResponse:
            connection = self.open.get(request.protocol)
            if connection is None:
                return await handle(request)
            connection.busy += 1
            connection.cancel_timer()
            try:
                return await handle(request)
            finally:
                connection.busy -= 1
                if not connection.busy:
                    connection.wait(self.limits.idle_timeout)

        return tracked

    async def shutdown(self, timeout: float | None = None) -> None:
        await super().shutdown(timeout)
        for connection in list(self.open.values()):
            connection.abort()


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` whose sites must listen *without* TLS: the guard does it."""

    def __init__(
        self, app: web.Application, context: ssl.SSLContext, limits: ConnectionLimits, **kw: Any
    ) -> None:
        super().__init__(app, **kw)
        self.tls_context = context
        self.limits = limits

    async def _make_server(self) -> web.Server:
        inner = await super()._make_server()
        return GuardedServer(inner, self.tls_context, self.limits)
