"""Network providers: the one way out of and into a node.

Every outgoing connection and every listener goes through a
``NetworkProvider`` chosen by configuration:

    connector(host=, port=, tls=, isolation_key=)   an aiohttp connector for one
                                                    server; ``tls`` (an SPKI pin)
                                                    is enforced on every connection
    listen(runner, host=, port=, ssl_context=)      serve an aiohttp runner; returns
                                                    the address to announce

``TcpProvider`` connects directly. Tor and I2P providers (SOCKS5, one
isolation key per server so each gets its own circuit) fit the same interface;
they are not here. A provider refuses hosts it cannot reach safely rather than
guessing.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import aiohttp

from veil.errors import UsageError
from veil.formats.nurl import ANONYMOUS_SUFFIXES, is_anonymous_host

if TYPE_CHECKING:  # aiohttp.web is the server side: clients need not import it
    from aiohttp import web

__all__ = ["ANONYMOUS_SUFFIXES", "ListenAddress", "NetworkProvider", "TcpProvider"]


@dataclass(frozen=True)
class ListenAddress:
    """Where a listener can be reached (what goes into NURLs)."""

    host: str
    port: int


class NetworkProvider(Protocol):
    """How bytes reach other nodes. ``name`` is ``tcp``, ``tor`` or ``i2p``."""

    name: str

    def connector(
        self,
        *,
        host: str,
        port: int,
        tls: aiohttp.Fingerprint | ssl.SSLContext | bool,
        isolation_key: str,
    ) -> aiohttp.BaseConnector:
        """A connector for connections to ``host:port`` only.

        ``tls`` is applied to every connection it makes (pass an SPKI pin).
        ``isolation_key`` names the peer: an anonymizing provider keeps each key
        on its own circuit (e.g. as the SOCKS5 user name).
        """
        ...

    async def listen(
        self,
        runner: web.BaseRunner,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> ListenAddress:
        """Start serving ``runner`` (already set up); ``runner.cleanup()`` stops it."""
        ...


# Connections the kernel completed before the server took them: aiohttp's 128
# overflowed under a flood of 300 (the connection guard evicts idle ones only
# once accepted; an overflowed one hangs at its client, never seen by the server).
BACKLOG = 1024


class TcpProvider:
    """Direct TCP connections and listeners."""

    name = "tcp"

    def __init__(
        self, *, connections_per_server: int = 16, keepalive_timeout: float = 30.0
    ) -> None:
        self.connections_per_server = connections_per_server
        self.keepalive_timeout = keepalive_timeout

    def connector(
        self,
        *,
        host: str,
        port: int,
        tls: aiohttp.Fingerprint | ssl.SSLContext | bool,
        isolation_key: str,
    ) -> aiohttp.BaseConnector:
        del port, isolation_key  # one connector per server; nothing to isolate on TCP
        if is_anonymous_host(host):  # ABC.ONION and abc.onion. too: never resolved here
            raise UsageError(
                f"{host} can only be reached through Tor or I2P, which is not yet available"
            )
        return aiohttp.TCPConnector(
            ssl=tls,
            limit=self.connections_per_server,
            keepalive_timeout=self.keepalive_timeout,
            ttl_dns_cache=300,
        )

    async def listen(
        self,
        runner: web.BaseRunner,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> ListenAddress:
        before = set(map(_port_of, runner.addresses))
        from aiohttp import web

        site = web.TCPSite(
            runner, host, port, ssl_context=ssl_context, reuse_address=True, backlog=BACKLOG
        )
        await site.start()
        ports = [p for p in map(_port_of, runner.addresses) if p not in before]
        return ListenAddress(host, ports[0] if ports else port)


def _port_of(address: object) -> int:
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        return address[1]
    return -1
