"""Network providers: the one way out of and into a node.

Every outgoing connection and every listener goes through a
``NetworkProvider`` chosen by configuration. ``TcpProvider`` connects
directly; Tor and I2P providers (SOCKS5 with a per-server isolation key) fit
the same interface. A provider refuses hosts it cannot reach safely rather
than guessing.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from veil.errors import UsageError


class NetworkProvider(Protocol):
    name: str

    def connector(self, *, host: str, isolation_key: str) -> aiohttp.BaseConnector:
        """A connector for connections to ``host``; ``isolation_key`` names the peer
        (a Tor provider puts each key on its own circuit)."""
        ...


class TcpProvider:
    name = "tcp"

    def __init__(self, *, connections_per_server: int = 16) -> None:
        self.connections_per_server = connections_per_server

    def connector(self, *, host: str, isolation_key: str) -> aiohttp.BaseConnector:
        if host.endswith(".onion") or host.endswith(".i2p"):
            raise UsageError(
                f"{host} can only be reached through Tor or I2P, which is not yet available"
            )
        return aiohttp.TCPConnector(
            limit=self.connections_per_server, ttl_dns_cache=300, enable_cleanup_closed=True
        )
