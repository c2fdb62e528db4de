"""The addresses of one storage server, and which of them answers.

A server may announce several NURLs: Tahoe announces one per ``tub.location``
hint (say a LAN address, a public one and an onion). ``Routes`` holds one
pinned aiohttp session per address the connection policy can reach, tries
them in turn (the one that answered last comes first, so after one answer
the rest of the command goes straight there) and moves on only when no
connection could be made: a refused or timed-out connect, a TLS pin mismatch,
Tor failing to reach it. A request that may have reached the server is never
sent again elsewhere, except a read or an immutable share write whose
connection broke (``broke_mid_request``: a relay that died mid-transfer, an
I2P stream or Tor circuit that failed): the storage client sends it once more
on a new connection, then to the next address.

Not here: what requests mean (``storage_client``), which network reaches an
address (``veil.adapters.net.connection_policy``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from veil.adapters.http.tls import SpkiPin
from veil.adapters.net.tcp import NetworkProvider
from veil.errors import ServerUnavailable, UsageError
from veil.formats import wire
from veil.formats.nurl import NURL
from veil.services.server_failures import PIN_MISMATCH, PinMismatch

CONNECT_TIMEOUT = 5.0  # seconds to connect and finish TLS; a hung server fails fast
TOR_CONNECT_TIMEOUT = 45.0
REQUEST_TIMEOUT = 60.0
TOR_REQUEST_TIMEOUT = 120.0
# Headers aiohttp would add by itself: none is sent, so a request names no
# software (no User-Agent) and every header a server sees is one veil sets.
NO_AUTO_HEADERS = ("User-Agent", "Content-Type")


@dataclass
class Route:
    """One address of a server, with its own session (made on first use)."""

    nurl: NURL
    network: NetworkProvider
    connect_timeout: float
    request_timeout: float
    session: aiohttp.ClientSession | None = None

    @property
    def via(self) -> str:
        return self.network.name

    @property
    def where(self) -> str:
        """How this address is named in messages: an anonymous one is not written."""
        return f"via {self.via}" if self.via in ("tor", "i2p") else f"at {self.nurl.netloc}"

    @functools.cached_property
    def pin(self) -> SpkiPin:
        """One pin object per address: aiohttp pools connections by their ``ssl``
        argument, so a new object per request would open a connection per request."""
        return SpkiPin(self.nurl.spki_hash)

    @property
    def base(self) -> str:
        return self.nurl.base_url + "/storage/v1"

    def get_session(self, server_id: str) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            connector = self.network.connector(
                host=self.nurl.host, port=self.nurl.port, tls=self.pin, isolation_key=server_id
            )
            self.session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=self.request_timeout, sock_connect=self.connect_timeout
                ),
                headers={
                    "Authorization": self.nurl.authorization,
                    "Accept": wire.CBOR,
                    "Accept-Encoding": "identity",
                },
                auto_decompress=False,
                skip_auto_headers=NO_AUTO_HEADERS,
            )
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def make_route(
    nurl: NURL,
    network: NetworkProvider,
    connect_timeout: float = CONNECT_TIMEOUT,
    request_timeout: float = REQUEST_TIMEOUT,
) -> Route:
    if network.name in ("tor", "i2p"):  # circuits and tunnels take longer than a TCP connect
        connect_timeout = max(connect_timeout, TOR_CONNECT_TIMEOUT)
        request_timeout = max(request_timeout, TOR_REQUEST_TIMEOUT)
    return Route(nurl, network, connect_timeout, request_timeout)


def not_connected(exc: BaseException, route: Route) -> str | None:
    """Why no connection to ``route`` was made, or None when the request may
    have reached the server (then it must not be sent anywhere else)."""
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return PIN_MISMATCH
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"did not answer within {route.connect_timeout:.0f} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        reason = os.strerror(err.errno) if err.errno else type(err).__name__
        return f"is unreachable ({reason.lower()})"
    if isinstance(exc, ServerUnavailable):  # Tor could not reach it
        return f"could not be reached: {exc}"
    return None


BROKE = "broke the connection mid-request"


def broke_mid_request(exc: BaseException, method: str, path: str) -> str | None:
    """Why a request that may have reached the server can still go to the next
    address, or None: only a read or an immutable share write (the same bytes at
    the same offset are accepted again) whose connection broke, as when a relay
    in the way dies (docs/relays.md); never a timeout, never a mutable write."""
    idempotent = method == "GET" or (method == "PATCH" and path.startswith("/immutable/"))
    broken = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError)
    if idempotent and isinstance(exc, broken):
        return BROKE
    return None


def request_failure(exc: BaseException, route: Route) -> str:
    """Why a request that reached (or may have reached) the server failed."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {route.request_timeout:.0f} s"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "closed the connection"
    return f"is unreachable ({type(exc).__name__})"


class Routes:
    """The reachable addresses of one server, the last one that answered first."""

    def __init__(self, routes: Sequence[Route]) -> None:
        if not routes:
            raise UsageError("a storage client needs at least one address")
        self.routes = list(routes)
        self.current = self.routes[0]

    def in_order(self) -> list[Route]:
        return [self.current, *(r for r in self.routes if r is not self.current)]

    def answered(self, route: Route) -> None:
        self.current = route

    def unreachable(self, name: str, failures: list[tuple[Route, str]]) -> ServerUnavailable:
        """The error when no address could be connected to (``PinMismatch``
        when every address that answered had the wrong certificate)."""
        kind = ServerUnavailable
        if any(why == PIN_MISMATCH for _, why in failures):
            kind = PinMismatch
        if len(failures) == 1:
            route, why = failures[0]
            return kind(f"{name} {route.where} {why}")
        parts = "; ".join(f"{r.where} {why}" for r, why in failures)
        return kind(f"{name} is unreachable at all {len(failures)} addresses: {parts}")

    async def close(self) -> None:
        for route in self.routes:
            await route.close()
