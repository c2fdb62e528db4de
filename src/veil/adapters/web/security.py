"""Safety on every web gateway response, and the web UI's CSRF and Host checks.

``install_security(app)`` makes every response (also errors, redirects and
streamed downloads: the headers are set as a response is prepared) carry
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``,
``X-Content-Type-Options: nosniff`` and a strict Content-Security-Policy:
nothing may be loaded from anywhere but the node, and only the UI's own
pages (``/`` and ``/ui/…``) may run the UI's own script; files served by
Tahoe's web API can run no script at all.

For the UI only (Tahoe's API stays as Tahoe has it), a middleware refuses
(403, nothing changed) a request whose ``Host`` is not the node's loopback
address or an onion name (a DNS-rebinding page cannot read the UI) and a state-changing
request without the CSRF token of its session or sent cross-site
(``Sec-Fetch-Site``, ``Origin``). The token is an HMAC of the session cookie
under a key made when the process starts; it is sent in a form field
``csrf``, a ``?csrf=`` query (multipart uploads) or an ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

SESSION_COOKIE = "veil_ui"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
UI_PREFIX = "/ui/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_COMMON = "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
UI_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    f"connect-src 'self'; {_COMMON}"
)
API_POLICY = f"default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; {_COMMON}"

_KEY = os.urandom(32)  # CSRF tokens die with the process, as the sessions do
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_ui_request(request: web.BaseRequest) -> bool:
    """The UI's own pages: ``/`` without ``t=`` (``/?t=json`` is Tahoe's) and ``/ui/…``."""
    if request.path == "/":
        return "t" not in request.query
    return request.path.startswith(UI_PREFIX)


def csrf_token(session: str) -> str:
    return hmac.new(_KEY, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()


def request_csrf_token(request: web.Request) -> str:
    """The token the UI's forms carry for this request's session ("" without one)."""
    session = request.cookies.get(SESSION_COOKIE, "")
    return csrf_token(session) if session else ""


async def _set_headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "no-referrer"
    h["X-Content-Type-Options"] = "nosniff"
    ui = is_ui_request(request)
    ui_page = ui and not request.path.startswith("/ui/download")
    h["Content-Security-Policy"] = UI_POLICY if ui_page else API_POLICY
    if ui:
        h.setdefault("Cache-Control", "no-store")


def loopback_host(request: web.Request) -> bool:
    """Whether the ``Host`` header names this node: a loopback address,
    ``localhost``, the very address the connection came in on, or an onion
    name (``web.onion``: only Tor delivers a request for one, and no DNS
    answer can make a browser send one to this node)."""
    host = request.host.rsplit(":", 1)[0] if not request.host.startswith("[") else None
    if host is None:  # [v6]:port
        host = request.host[1:].split("]", 1)[0]
    if host == "localhost" or host.endswith(".onion"):
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        return False
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return isinstance(sock, tuple) and sock[0] == host


def _cross_site(request: web.Request) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")  # "null" under Referrer-Policy: no-referrer
    return origin not in (None, "null") and origin != f"{request.scheme}://{request.host}"


async def _presented_token(request: web.Request) -> str:
    token = request.headers.get(CSRF_HEADER) or request.query.get(CSRF_FIELD)
    if token:
        return token
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()  # cached: the handler reads it again for free
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def refusal(message: str, status: int = 403) -> web.Response:
    body = (
        "<!doctype html><meta charset=utf-8><title>Refused</title>"
        '<link rel=stylesheet href="/ui/static/style.css">'
        f"<main><h1>Refused</h1><p>{message}</p>"
        "<p><a href='/'>Back to the start page</a></p></main>"
    )
    return web.Response(status=status, text=body, content_type="text/html")


@web.middleware
async def ui_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_ui_request(request):
        return await handler(request)
    if not loopback_host(request):
        return refusal("This page is only served to this computer's own address (127.0.0.1).")
    if request.method not in SAFE_METHODS:
        expected = request_csrf_token(request)
        presented = await _presented_token(request)
        if _cross_site(request) or not expected or not hmac.compare_digest(expected, presented):
            return refusal(
                "This form did not come from this page (its security token is missing "
                "or old). Nothing was changed. Go back, reload the page and try again."
            )
    return await handler(request)


def install_security(app: web.Application) -> None:
    """Headers on every response, and the UI's Host and CSRF checks."""
    app.on_response_prepare.append(_set_headers)
    app.middlewares.append(ui_guard)
