"""Tor as a network provider, and onion services for nodes.

``find_socks`` finds Tor's SOCKS port as ``veil.formats.tor_settings`` orders
the search, checking that it answers (a local connection, nothing leaves the
machine). ``TorProvider`` makes every connection through it, each peer under
its own SOCKS credentials: ``veil:<peer id>`` plus a random per-process
password, so Tor (``IsolateSOCKSAuth``, on by default) gives each server its
own circuit and no two runs of veil share one. ``OnionService`` publishes a
node's listener as a v3 onion service from the node's own key and withdraws
it on stop.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from veil.adapters.net.socks import SocksConnector, connect_endpoint
from veil.adapters.net.tcp import ListenAddress, TcpProvider
from veil.adapters.net.tor_control import TorControl
from veil.errors import ConfigError, UsageError
from veil.formats import socks5
from veil.formats.tor_settings import Endpoint, Search, control_search, is_loopback, socks_search

log = logging.getLogger(__name__)
PROCESS_NONCE = secrets.token_hex(16)  # new for every run: no circuit outlives the process


async def _first_answering(search: Search, what: str) -> Endpoint:
    tried = []
    for endpoint in search.endpoints:
        try:
            sock = await connect_endpoint(endpoint)
        except (OSError, ValueError) as exc:
            tried.append(f"{endpoint} ({getattr(exc, 'strerror', None) or exc})")
            continue
        sock.close()
        return endpoint
    if search.explicit:
        raise ConfigError(
            f"Tor's {what} port given by {search.source} does not answer: {tried[0]}",
            hint="start tor, or correct that setting; veil never connects without it",
        )
    raise ConfigError(
        f"Tor is not running: no {what} port answers at {', '.join(map(str, search.endpoints))}",
        hint="start tor (apt install tor), or tell veil where it is with TOR_SOCKS_PORT, "
        "TOR_SOCKS_IPC_PATH or [tor] socks.port",
    )


async def find_socks(env: Mapping[str, str], tor: Mapping[str, str]) -> Endpoint:
    return await _first_answering(socks_search(env, tor), "SOCKS")


async def find_control(env: Mapping[str, str], tor: Mapping[str, str]) -> Endpoint:
    return await _first_answering(control_search(env, tor), "control")


class TorProvider:
    """Every connection through Tor's SOCKS port; listeners only on loopback."""

    name = "tor"

    def __init__(
        self,
        socks: Endpoint,
        *,
        connections_per_server: int = 8,
        keepalive_timeout: float = 60.0,
    ) -> None:
        self.socks = socks
        self.connections_per_server = connections_per_server
        self.keepalive_timeout = keepalive_timeout

    def credentials(self, isolation_key: str) -> socks5.Credentials:
        return socks5.Credentials(f"veil:{isolation_key}"[:255], PROCESS_NONCE)

    def connector(
        self,
        *,
        host: str,
        port: int,
        tls: aiohttp.Fingerprint | ssl.SSLContext | bool,
        isolation_key: str,
    ) -> aiohttp.BaseConnector:
        del host, port
        if not isolation_key:
            raise UsageError("every Tor stream needs an isolation key")
        return SocksConnector(
            self.socks,
            self.credentials(isolation_key),
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
        if not is_loopback(host):
            raise ConfigError(f"a listener behind Tor binds 127.0.0.1 only, not {host}")
        return await TcpProvider().listen(runner, host=host, port=port, ssl_context=ssl_context)


class OnionService:
    """A v3 onion service forwarding to local listeners, for a node's lifetime."""

    def __init__(self, control: TorControl, service_id: str) -> None:
        self.control = control
        self.service_id = service_id

    @property
    def address(self) -> str:
        return self.service_id + ".onion"

    @classmethod
    async def start(
        cls,
        control_endpoint: Endpoint,
        key_blob: str,
        ports: list[tuple[int, int]],
        *,
        expected_address: str | None = None,
        password: str | None = None,
        cookie_file: str | None = None,
    ) -> OnionService:
        """``ports``: (port on the onion address, local port on 127.0.0.1)."""
        control = await TorControl.connect(
            control_endpoint, password=password, cookie_file=cookie_file
        )
        try:
            sid = await control.add_onion(key_blob, [(v, f"127.0.0.1:{p}") for v, p in ports])
        except BaseException:
            await control.close()
            raise
        service = cls(control, sid)
        if expected_address and service.address != expected_address.lower():
            await service.stop()
            raise ConfigError(
                "the onion key in private/ does not match the onion address in tahoe.cfg",
                hint="the key file was replaced; restore it or create the node again",
            )
        log.info("onion service published (%d port(s))", len(ports))
        return service

    async def stop(self) -> None:
        try:
            await self.control.del_onion(self.service_id)
        except (OSError, ConfigError, Exception) as exc:  # tor gone: the service is gone too
            log.info("could not withdraw the onion service: %s", exc)
        await self.control.close()
