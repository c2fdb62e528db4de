"""An introducer over HTTPS, and the client side of it.

Tahoe's introducer speaks only Foolscap; veil's speaks HTTPS with the same
pinning as storage: its address is an NURL (``pb://<spki>@host:port/<swissnum>#v=1``)
and every request carries the swissnum. Announcements are Tahoe's signed
triplets (``veil.formats.announcement``), checked on arrival and again by
every client, which also caches what it heard per introducer so it can start
without the introducer.

    POST /introducer/v1/announce              body: {"msg", "sig", "key"} (JSON)
    GET  /introducer/v1/announcements/storage  -> [{"msg", "sig", "key"}, ...]
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from veil.adapters.http.routes import NO_AUTO_HEADERS
from veil.adapters.http.storage_server import RunningServer
from veil.adapters.http.tls import SpkiPin
from veil.adapters.net.connection_policy import Networks
from veil.adapters.net.tcp import NetworkProvider, TcpProvider
from veil.adapters.node.files import write_private
from veil.errors import ConfigError, FormatError, ServerUnavailable, VeilError
from veil.formats.announcement import MAX_ANNOUNCEMENT, AnnouncementBook, SignedAnnouncement
from veil.formats.nurl import NURL, is_anonymous_host

log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=5)
TOR_TIMEOUT = aiohttp.ClientTimeout(total=90, sock_connect=45)


def _provider(nurl: NURL, networks: Networks | None) -> NetworkProvider:
    if networks is None:
        if is_anonymous_host(nurl.host):
            raise ConfigError("an onion introducer needs Tor")
        return TcpProvider()
    provider = networks.provider_for(nurl)
    if provider is None:
        raise ConfigError(f"the introducer cannot be reached: {networks.why_unreachable([nurl])}")
    return provider


def _auth(swissnum: str) -> str:
    return "Tahoe-LAFS " + base64.b64encode(swissnum.encode()).decode()


class IntroducerService:
    """Holds announcements (optionally persisted to ``state``) and serves them."""

    def __init__(self, swissnum: str, state: Path | None = None) -> None:
        self._auth = _auth(swissnum)
        self.book = AnnouncementBook()
        self.state = state
        if state is not None and state.exists():
            try:
                docs = json.loads(state.read_bytes())
            except (OSError, ValueError) as exc:  # a cache: the servers announce again
                log.warning("introducer state %s unreadable, starting empty: %s", state.name, exc)
                docs = []
            for doc in docs if isinstance(docs, list) else []:
                try:
                    self.book.offer(SignedAnnouncement.from_json(doc))
                except (FormatError, ValueError, TypeError, KeyError):
                    continue

    def _save(self) -> None:
        # announcements hold the servers' NURLs with their swissnums: a secret
        if self.state is not None:
            write_private(self.state, json.dumps([s.to_json() for s in self.book.signed()]))

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_ANNOUNCEMENT + 1024)
        app.router.add_post("/introducer/v1/announce", self.announce)
        app.router.add_get("/introducer/v1/announcements/{service}", self.announcements)
        return app

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), self._auth.encode())

    async def announce(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401, text="Wrong Authorization header")
        try:
            signed = SignedAnnouncement.from_json(json.loads(await request.read()))
            new = self.book.offer(signed)
        except (ValueError, FormatError) as exc:
            log.warning("refused an announcement: %s", exc)
            return web.Response(status=400, text=str(exc))
        if new:
            self._save()
        return web.Response(status=200, text="accepted" if new else "unchanged")

    async def announcements(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401, text="Wrong Authorization header")
        docs = [s.to_json() for s in self.book.signed(request.match_info["service"])]
        return web.json_response(docs)


async def start_introducer(
    service: IntroducerService, *, host: str, port: int, ssl_context: ssl.SSLContext
) -> RunningServer:
    runner = web.AppRunner(service.make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    return RunningServer(runner, sockets[0].getsockname()[1] if sockets else port)


async def _request(
    nurl: NURL,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    networks: Networks | None = None,
    name: str = "introducer",
) -> bytes:
    url = f"https://{nurl.host}:{nurl.port}/introducer/v1{path}"
    provider = _provider(nurl, networks)
    anonymous = provider.name in ("tor", "i2p")
    where = f"(via {provider.name})" if anonymous else f"{nurl.host}:{nurl.port}"
    connector = provider.connector(
        host=nurl.host, port=nurl.port, tls=SpkiPin(nurl.spki_hash), isolation_key=name
    )
    timeout = TOR_TIMEOUT if anonymous else TIMEOUT
    # a fixed, neutral header set (no User-Agent): see veil.adapters.http.routes
    headers = {
        "Authorization": _auth(nurl.swissnum),
        "Accept": "application/json",
        "Accept-Encoding": "identity",
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        async with (
            aiohttp.ClientSession(
                timeout=timeout, connector=connector, skip_auto_headers=NO_AUTO_HEADERS
            ) as session,
            session.request(
                method, url, data=body, ssl=SpkiPin(nurl.spki_hash), headers=headers
            ) as resp,
        ):
            data = await resp.read()
            if resp.status != 200:
                raise ServerUnavailable(f"{name} {where} answered {resp.status}: {data[:100]!r}")
            return data
    except ServerUnavailable as exc:
        raise ServerUnavailable(f"{name} {where}: {exc}", hint=exc.hint) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ServerUnavailable(f"{name} {where} is unreachable ({type(exc).__name__})") from None


async def publish(
    nurl: NURL, signed: SignedAnnouncement, networks: Networks | None = None, petname: str = ""
) -> None:
    body = json.dumps(signed.to_json()).encode()
    await _request(
        nurl, "POST", "/announce", body, networks=networks, name=f"introducer {petname}".strip()
    )


def cached_announcements(cache: Path) -> AnnouncementBook:
    """What an introducer said last time (each entry verified again), read
    without touching the network; empty when there is no cache yet."""
    book = AnnouncementBook()
    if cache.exists():
        try:
            for doc in json.loads(cache.read_text()):
                book.offer(SignedAnnouncement.from_json(doc))
        except (OSError, ValueError, FormatError):
            log.warning("ignoring a damaged introducer cache %s", cache)
    return book


async def fetch_servers(
    nurl: NURL, cache: Path, networks: Networks | None = None, petname: str = ""
) -> dict[str, dict[str, Any]]:
    """Storage announcements from one introducer, verified; falls back to (and
    refreshes) the cache file, whose entries are verified again on load."""
    book = cached_announcements(cache)
    try:
        answer = await _request(
            nurl,
            "GET",
            "/announcements/storage",
            networks=networks,
            name=f"introducer {petname}".strip(),
        )
        docs = json.loads(answer)
    except (VeilError, ValueError) as exc:
        log.info("using cached announcements: %s", exc)
        return book.servers()
    for doc in docs if isinstance(docs, list) else []:
        try:
            book.offer(SignedAnnouncement.from_json(doc))
        except FormatError as exc:
            log.warning("dropped an announcement from the introducer: %s", exc)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps([s.to_json() for s in book.signed()]))
    tmp.replace(cache)
    return book.servers()
