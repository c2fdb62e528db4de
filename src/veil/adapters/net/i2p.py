"""I2P as a network provider: every connection a stream through the router's SAM bridge.

``find_sam`` checks that the SAM bridge named by ``[i2p] sam.port`` (default
``tcp:127.0.0.1:7656``) answers a HELLO; a node that must use I2P stops when
it does not. ``I2PProvider`` reaches ``pb+i2p://`` servers (``.b32.i2p``
names, never resolved here: the router looks the destination up in the I2P
network database) and runs TLS over the stream, so SPKI pinning works as on
TCP.

Isolation: each peer (``isolation_key``: a server id, an introducer's name)
gets its own SAM session, that is its own transient destination with its own
tunnels, made on the first connection and kept for the process's life. Two
servers cannot tell from the client's destination that they serve the same
client, as with Tor's per-server circuits. The cost: each session builds its
own tunnels (i2pd answers ``SESSION CREATE`` once they are up, 20 s on i2pd
2.45; a few seconds on newer routers), in parallel for all servers; and the
router carries 5 tunnels per server the process talks to.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

import aiohttp
from aiohttp import web

from veil.adapters.net.sam_client import SamSession, open_socket
from veil.adapters.net.socks import StreamConnector
from veil.adapters.net.tcp import ListenAddress
from veil.errors import ConfigError, ServerUnavailable, UsageError
from veil.formats import sam
from veil.formats.tor_settings import Endpoint, parse_endpoint

log = logging.getLogger(__name__)
DEFAULT_SAM = "tcp:127.0.0.1:7656"
STREAM_TIMEOUT = 60.0  # LeaseSet lookup and stream set-up, after the session exists


def sam_endpoint(i2p: dict[str, str]) -> tuple[Endpoint, bool]:
    """The SAM endpoint of an ``[i2p]`` section, and whether it was given."""
    text = i2p.get("sam.port", "").strip()
    return parse_endpoint(text or DEFAULT_SAM), bool(text)


async def find_sam(endpoint: Endpoint, *, explicit: bool) -> Endpoint:
    """``endpoint`` if its SAM bridge answers HELLO; ``ConfigError`` otherwise."""
    try:
        sock = await open_socket(endpoint)
    except (ServerUnavailable, sam.SamError) as exc:
        source = "[i2p] sam.port" if explicit else "the default SAM port"
        raise ConfigError(
            f"I2P is not available: the SAM bridge at {endpoint} ({source}) does not answer "
            f"({exc})".replace(" ()", ""),
            hint="start i2pd (apt install i2pd; SAM is on by default at 127.0.0.1:7656) or "
            "set [i2p] sam.port; veil never falls back to a direct connection",
        ) from None
    sock.close()
    return endpoint


class I2PProvider:
    """Streams to ``.b32.i2p`` destinations, one SAM session per peer."""

    name = "i2p"

    def __init__(
        self,
        sam_port: Endpoint,
        *,
        connections_per_server: int = 8,
        keepalive_timeout: float = 120.0,
        stream_timeout: float = STREAM_TIMEOUT,
    ) -> None:
        self.sam = sam_port
        self.connections_per_server = connections_per_server
        self.keepalive_timeout = keepalive_timeout
        self.stream_timeout = stream_timeout
        self._sessions: dict[str, asyncio.Task[SamSession]] = {}

    async def session(self, isolation_key: str) -> SamSession:
        """The peer's own SAM session, made on first use (and again if the router
        dropped it)."""
        task = self._sessions.get(isolation_key)
        if task is not None and task.done() and (task.exception() or not task.result().alive):
            task = None
        if task is None:
            task = asyncio.ensure_future(SamSession.create(self.sam))
            self._sessions[isolation_key] = task
        return await asyncio.shield(task)

    async def open_stream(self, isolation_key: str, host: str) -> Any:
        if not sam.is_b32_address(host):
            raise UsageError(f"I2P reaches only .b32.i2p addresses, not {host[:70]!r}")
        session = await self.session(isolation_key)
        return await session.connect_stream(host.lower(), timeout=self.stream_timeout)

    def connector(
        self,
        *,
        host: str,
        port: int,
        tls: aiohttp.Fingerprint | ssl.SSLContext | bool,
        isolation_key: str,
    ) -> aiohttp.BaseConnector:
        del port  # one destination per service: the port is informational
        if not isolation_key:
            raise UsageError("every I2P stream needs an isolation key")
        if not sam.is_b32_address(host):
            raise UsageError(f"I2P reaches only .b32.i2p addresses, not {host[:70]!r}")
        return SamConnector(
            self,
            isolation_key,
            ssl=tls,
            limit=self.connections_per_server,
            keepalive_timeout=self.keepalive_timeout,
        )

    async def listen(
        self,
        runner: web.BaseRunner,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> ListenAddress:
        raise UsageError("an I2P listener is an I2PService (veil.adapters.net.i2p_service)")

    async def close(self) -> None:
        tasks, self._sessions = list(self._sessions.values()), {}
        for task in tasks:
            if not task.done():
                task.cancel()
                continue
            if task.exception() is None:
                await task.result().close()


class SamConnector(StreamConnector):
    """Every connection a SAM stream of one peer's session, then TLS over it."""

    network = "I2P"

    def __init__(self, provider: I2PProvider, isolation_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._provider = provider
        self._isolation_key = isolation_key

    async def open_stream(self, host: str, port: int) -> socket.socket:
        sock: socket.socket = await self._provider.open_stream(self._isolation_key, host)
        return sock

    def connect_limit(self, timeout: aiohttp.ClientTimeout) -> float | None:
        return None  # the provider's stream_timeout: I2P takes longer than a connect
