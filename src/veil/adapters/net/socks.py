"""Streams through a SOCKS5 proxy (Tor's SocksPort), TCP or unix socket.

``open_tunnel`` connects to the proxy, authenticates with the stream's
isolation credentials and asks it to CONNECT to a host *name* (resolved by
Tor, never here). ``StreamConnector`` is an aiohttp connector whose every
connection is such a stream with TLS run over it, so SPKI pinning works exactly
as on direct connections; it has no resolver, so a host name given to it is
never looked up locally. ``SocksConnector`` opens its streams through SOCKS5;
I2P's ``SamConnector`` (``veil.adapters.net.i2p``) through SAM.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from veil.errors import ServerUnavailable
from veil.formats import socks5
from veil.formats.tor_settings import Endpoint


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await loop.sock_recv(sock, n - len(data))
        if not chunk:
            raise socks5.SocksError("the SOCKS5 proxy closed the connection")
        data += chunk
    return data


async def connect_endpoint(endpoint: Endpoint) -> socket.socket:
    """A connected, non-blocking socket to a Tor port (OSError if it does not answer)."""
    loop = asyncio.get_running_loop()
    if endpoint.is_unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: Any = endpoint.path
    else:
        infos = await loop.getaddrinfo(
            endpoint.host, endpoint.port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )
        family, _, _, _, target = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, target)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_tunnel(
    proxy: Endpoint, host: str, port: int, creds: socks5.Credentials
) -> socket.socket:
    """A socket already connected through the proxy to ``host:port``."""
    loop = asyncio.get_running_loop()
    try:
        sock = await connect_endpoint(proxy)
    except (OSError, ValueError) as exc:
        raise ServerUnavailable(
            f"Tor's SOCKS port {proxy} does not answer ({getattr(exc, 'strerror', None) or exc})",
            hint="is tor running? veil never falls back to a direct connection",
        ) from None
    try:
        await loop.sock_sendall(sock, socks5.GREETING)
        socks5.check_method_reply(await _recv_exactly(loop, sock, socks5.METHOD_REPLY_SIZE))
        await loop.sock_sendall(sock, socks5.auth_request(creds))
        socks5.check_auth_reply(await _recv_exactly(loop, sock, socks5.AUTH_REPLY_SIZE))
        await loop.sock_sendall(sock, socks5.connect_request(host, port))
        head = await _recv_exactly(loop, sock, socks5.REPLY_HEAD_SIZE)
        await _recv_exactly(loop, sock, socks5.reply_remaining(head))
    except socks5.SocksError as exc:
        sock.close()
        raise ServerUnavailable(f"Tor could not reach the server: {exc}") from None
    except OSError as exc:
        sock.close()
        raise ServerUnavailable(f"the connection to Tor broke: {exc.strerror or exc}") from None
    except BaseException:
        sock.close()
        raise
    return sock


class NoLocalResolver(AbstractResolver):
    """Hands the name on unresolved: the proxy (or router) resolves it."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": host, "port": port, "family": family, "proto": 0, "flags": 0}
        ]

    async def close(self) -> None:
        return None


class StreamConnector(aiohttp.TCPConnector):
    """An aiohttp connector whose every connection is a stream that
    ``open_stream`` opens through an anonymizing network (never a local name
    lookup), with TLS run over it as on direct connections. Subclasses say how
    the stream is opened (``network`` names it in errors)."""

    network = "the network"

    def __init__(self, **kwargs: Any) -> None:
        kwargs["resolver"] = NoLocalResolver()
        kwargs.pop("use_dns_cache", None)
        super().__init__(use_dns_cache=False, **kwargs)

    async def open_stream(self, host: str, port: int) -> socket.socket:
        raise NotImplementedError

    def connect_limit(self, timeout: aiohttp.ClientTimeout) -> float | None:
        """How long opening a stream may take (None: ``open_stream`` bounds it)."""
        return timeout.sock_connect

    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[Any],
        req: Any,
        timeout: aiohttp.ClientTimeout,
        client_error: type[Exception] = aiohttp.ClientConnectorError,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, Any]:
        host, port = addr_infos[0][4][0], addr_infos[0][4][1]
        limit = self.connect_limit(timeout)
        try:
            async with asyncio.timeout(limit):
                sock = await self.open_stream(host, port)
        except TimeoutError:
            within = f" within {limit:.0f} s" if limit else " in time"
            raise ServerUnavailable(f"no answer through {self.network}{within}") from None
        try:
            return await self._loop.create_connection(*args, **kwargs, sock=sock)
        except BaseException:
            sock.close()
            raise


class SocksConnector(StreamConnector):
    """Every connection through ``proxy`` with the same isolation credentials."""

    network = "Tor"

    def __init__(self, proxy: Endpoint, creds: socks5.Credentials, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proxy = proxy
        self._creds = creds

    async def open_stream(self, host: str, port: int) -> socket.socket:
        return await open_tunnel(self._proxy, host, port, self._creds)
