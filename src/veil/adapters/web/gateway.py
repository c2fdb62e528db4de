"""The start of the web gateway: the welcome page, ``GET /?t=json``.

Served by ``veil run`` when ``[node] web.port`` is set (Tahoe's endpoint form,
``tcp:3456:interface=127.0.0.1``, or a bare port). It binds to 127.0.0.1
unless the endpoint names another interface. The facts are those of
``veil status --json`` (``veil.adapters.node.server_status``), in Tahoe's shape.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from veil.adapters.http.storage_server import RunningServer
from veil.adapters.node.client_session import open_client
from veil.adapters.node.server_status import server_rows, welcome_json
from veil.adapters.web.security import install_security
from veil.adapters.web.ui import add_ui_routes
from veil.errors import ConfigError

_ENDPOINT = re.compile(r"^(?:tcp:)?(\d{1,5})(?::interface=([0-9a-fA-F.:]+))?$")


def parse_web_port(text: str) -> tuple[str, int]:
    """(interface, port) from ``tcp:PORT[:interface=ADDR]`` or ``PORT``."""
    m = _ENDPOINT.match(text.strip())
    if not m or not 0 <= int(m[1]) <= 65535:
        raise ConfigError(f"[node] web.port = {text!r} must look like tcp:3456:interface=127.0.0.1")
    return m[2] or "127.0.0.1", int(m[1])


async def start_web_gateway(node_dir: Path, web_port: str) -> RunningServer:
    host, port = parse_web_port(web_port)

    async def welcome(request: web.Request) -> web.Response:
        if request.query.get("t") != "json":
            return web.Response(text="veil node: see /?t=json\n")
        async with open_client(node_dir) as client:
            rows = await server_rows(client)
            return web.json_response(welcome_json(rows, client.node.introducers()))

    app = web.Application()
    install_security(app)  # headers on every response; the UI's Host and CSRF checks
    add_ui_routes(app, node_dir)  # the web UI: GET / (without t=) and /ui/...
    app.router.add_get("/", welcome)
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
    (node_dir / "node.url").write_text(f"http://{host}:{bound}/\n")
    return RunningServer(runner, bound)
