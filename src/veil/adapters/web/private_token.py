"""``/private/``: the web API's token-guarded part, and ``private/api_auth_token``.

As Tahoe 1.20 (web/private.py, client.py): a new token, the urlsafe base64 of
32 random bytes and a newline, is written to ``NODEDIR/private/api_auth_token``
(mode 0600) every time the gateway starts, and every request under
``/private/`` must carry ``Authorization: tahoe-lafs TOKEN`` (compared in
constant time). Without it the answer is 401 with Tahoe's
``WWW-Authenticate: tahoe-lafs realm="tahoe-lafs"`` challenge; with it, a path
nobody mounted is a 404, as in Tahoe. ``add_private_route`` mounts a guarded
route (for veil's own calls, such as the UI's). The rest of the web API is, as
in Tahoe, guarded by its caps alone.
"""

from __future__ import annotations

import hmac
import os
from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

TOKEN_FILE = "api_auth_token"
SCHEME = "tahoe-lafs"
TOKEN = web.AppKey("veil.api_auth_token", bytes)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ensure_token(node_dir: Path) -> bytes:
    """Write a fresh token (0600, in a 0700 ``private/``) and return it."""
    private = node_dir / "private"
    private.mkdir(mode=0o700, exist_ok=True)
    token = urlsafe_b64encode(os.urandom(32))
    path = private / TOKEN_FILE
    tmp = private / f".{TOKEN_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token


def read_token(node_dir: Path) -> bytes:
    try:
        return (node_dir / "private" / TOKEN_FILE).read_bytes().strip()
    except OSError:
        return b""


def authorized(request: web.Request, token: bytes) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme != SCHEME or not token:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token)


def unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="Unauthorized",
        headers={"WWW-Authenticate": f'{SCHEME} realm="{SCHEME}"'},
    )


def guard(handler: Handler, token_of: Callable[[], bytes]) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not authorized(request, token_of()):
            return unauthorized()
        return await handler(request)

    return guarded


PRIVATE_ROUTES = web.AppKey("veil.private_routes", dict)


def add_routes(app: web.Application, node_dir: Path) -> None:
    """``/private/…``: 401 without the token; with it, a mounted route or a 404."""
    routes: dict[tuple[str, str], Handler] = {}
    app[PRIVATE_ROUTES] = routes

    async def dispatch(request: web.Request) -> web.StreamResponse:
        handler = routes.get((request.method, request.match_info["tail"].strip("/")))
        if handler is None:
            raise web.HTTPNotFound(text="No Such Resource")
        return await handler(request)

    app.router.add_route("*", "/private/{tail:.*}", guard(dispatch, lambda: read_token(node_dir)))


def add_private_route(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """Mount ``handler`` at ``/private/PATH``, behind the token."""
    app[PRIVATE_ROUTES][(method.upper(), path.strip("/"))] = handler
