"""The web gateway: Tahoe 1.20's web API (and, mounted here, veil's web UI).

Served by ``veil run`` when ``[node] web.port`` is set (Tahoe's endpoint form,
``tcp:3456:interface=127.0.0.1``, or a bare port). ``make_app`` builds the
aiohttp application over one ``GatewaySession`` (one client for the gateway's
lifetime); ``start_web_gateway`` listens and writes ``NODEDIR/node.url`` (where
Tahoe's CLI and ``veil webopen`` look). Safe by default: it binds 127.0.0.1
unless told otherwise; another interface is refused when the node hides its
IP address (``veil.formats.tor_settings.privacy_problems`` stops start-up
first) and warned about otherwise; there is no access log, so no cap in a URL
is ever logged. Routes: ``/?t=json`` (welcome), ``/uri…`` (``wapi_paths``,
``wapi_files``, ``wapi_directories``), ``/file/``, ``/named/``,
``/operations/`` (``wapi_operations``), ``/statistics``, ``/status``
(``wapi_status``), ``/private/``
(``private_token``).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from aiohttp import web

from veil.adapters.http.storage_server import RunningServer
from veil.adapters.node.server_status import server_rows, storage_figures, welcome_json
from veil.adapters.web import private_token, wapi_paths
from veil.adapters.web.security import install_security
from veil.adapters.web.ui import add_ui_routes
from veil.adapters.web.wapi_errors import error_middleware
from veil.adapters.web.wapi_operations import OPERATIONS, Operations
from veil.adapters.web.wapi_session import GatewaySession
from veil.errors import ConfigError
from veil.formats.tor_settings import is_loopback

log = logging.getLogger(__name__)
_ENDPOINT = re.compile(r"^(?:tcp:)?(\d{1,5})(?::interface=([0-9a-fA-F.:]+|localhost))?$")
SESSION = web.AppKey("veil.session", GatewaySession)
STARTED = web.AppKey("veil.started", float)
MAX_REQUEST_BODY = 16 * 1024 * 1024  # forms read whole; uploads are streamed past this


def parse_web_port(text: str) -> tuple[str, int]:
    """(interface, port) from ``tcp:PORT[:interface=ADDR]`` or ``PORT``."""
    m = _ENDPOINT.match(text.strip())
    if not m or not 0 <= int(m[1]) <= 65535:
        raise ConfigError(f"[node] web.port = {text!r} must look like tcp:3456:interface=127.0.0.1")
    return m[2] or "127.0.0.1", int(m[1])


def check_interface(host: str, *, hides_ip: bool) -> None:
    """Refuse a non-loopback gateway on a node that hides its IP; warn otherwise."""
    if is_loopback(host):
        return
    if hides_ip:
        raise ConfigError(
            f"[node] web.port listens on {host}, which other machines can reach; "
            "this node hides its IP address, so the gateway must listen on 127.0.0.1",
            hint="set web.port = tcp:3456:interface=127.0.0.1",
        )
    log.warning(
        "the web gateway listens on %s: anyone who can reach it can use every cap they "
        "know through it (Tahoe's web API has no login); prefer interface=127.0.0.1",
        host,
    )


def make_app(session: GatewaySession) -> web.Application:
    """The gateway's application: Tahoe's web API over ``session``."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_REQUEST_BODY)
    app[SESSION] = session
    app[OPERATIONS] = operations = Operations()
    app[STARTED] = time.time()
    node_dir = session.node_dir
    install_security(app)  # headers on every response; the UI's Host and CSRF checks
    add_ui_routes(app, node_dir)  # the web UI: GET / (without t=) and /ui/...

    async def welcome(request: web.Request) -> web.StreamResponse:
        if request.query.get("t") != "json":
            return web.Response(text="veil node: see /?t=json\n")
        client = await session.client()
        rows = await server_rows(client)
        storage = storage_figures(node_dir)  # a storage node's own figures, per account
        return web.json_response(welcome_json(rows, client.node.introducers(), storage=storage))

    async def uri_root(request: web.Request) -> web.StreamResponse:
        from veil.adapters.web import wapi_files

        return await wapi_files.unlinked(session, request, node_dir)

    async def uri_path(request: web.Request) -> web.StreamResponse:
        return await wapi_paths.uri_path(session, request)

    async def named(request: web.Request) -> web.StreamResponse:
        return await wapi_paths.named_file(session, request)

    async def statistics(request: web.Request) -> web.StreamResponse:
        stats = {"node.uptime": time.time() - app[STARTED]}
        body = {"stats": stats, "counters": {}}
        if request.query.get("t") == "json":
            return web.json_response(body)
        return web.Response(text="".join(f"{k}: {v}\n" for k, v in stats.items()))

    app.router.add_get("/", welcome)
    app.router.add_route("*", "/uri", uri_root)
    app.router.add_route("*", "/uri/{tail:.*}", uri_path)
    app.router.add_get("/file/{tail:.*}", named)
    app.router.add_get("/named/{tail:.*}", named)
    app.router.add_get("/statistics", statistics)
    app.router.add_get("/status", session.transfers.handle)
    app.router.add_get("/status/", session.transfers.handle)
    app.router.add_route("*", "/operations/{handle}", operations.handle)
    private_token.add_routes(app, node_dir)

    async def closing(_app: web.Application) -> None:
        await operations.close()
        await session.close()

    app.on_cleanup.append(closing)
    return app


async def start_web_gateway(
    node_dir: Path, web_port: str, *, hides_ip: bool = False
) -> RunningServer:
    host, port = parse_web_port(web_port)
    check_interface(host, hides_ip=hides_ip)
    private_token.ensure_token(node_dir)
    app = make_app(GatewaySession(node_dir))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"cannot listen on {host}:{port} for the web gateway: {exc.strerror or exc}"
        ) from None
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    shown = f"[{host}]" if ":" in host else host
    (node_dir / "node.url").write_text(f"http://{shown}:{bound}/\n")
    return RunningServer(runner, bound)
