"""The web UI: pages for people at ``/`` and ``/ui/…``, served by the web gateway.

``add_ui_routes(app, node_dir)`` mounts it on the gateway's application:
``GET /`` without ``t=`` (``/?t=json`` stays Tahoe's welcome JSON), the pages
(status, files, backups, recovery, repair), the UI's own small JSON
endpoints under ``/ui/api/``, its CSS and script under ``/ui/static/``, and
``/ui/login`` (``veil.adapters.web.ui.access``). Every page but the login
and the static files needs a session. A ``VeilError`` becomes a page that
says what is wrong in one line (JSON for ``/ui/api/``); nothing is logged
with a cap in it. Headers, Host and CSRF checks: ``veil.adapters.web.security``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from veil.adapters.web.security import Handler, refusal
from veil.adapters.web.ui import (
    backups_page,
    files_page,
    recovery_page,
    repair_page,
    shared_client,
    status_page,
)
from veil.adapters.web.ui.access import Sessions, safe_next, set_session_cookie
from veil.adapters.web.ui.html import error_page, page
from veil.adapters.web.ui.jobs import JobBoard
from veil.errors import NotFound, UsageError, VeilError

STATIC = Path(__file__).parent / "static"
Route = Callable[[web.Request, Path], Awaitable[web.StreamResponse]]


def _locked_out(request: web.Request) -> web.Response:
    body = (
        "<p>To keep your files private, this page opens only from the computer's own "
        "command line.</p><p>In a terminal, type:</p><pre>veil webopen</pre>"
        "<p>and open the address it prints (it works once, for two minutes).</p>"
    )
    return page(request, "Open veil from your terminal", body, status=401)


def _wrap(route: Route, node_dir: Path, sessions: Sessions, *, api: bool = False) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if not sessions.valid(request):
            if api:
                return web.json_response({"error": "not logged in: run veil webopen"}, status=401)
            return _locked_out(request)
        try:
            return await route(request, node_dir)
        except VeilError as exc:
            status = (
                404 if isinstance(exc, NotFound) else 400 if isinstance(exc, UsageError) else 502
            )
            if api:
                return web.json_response({"error": str(exc), "hint": exc.hint}, status=status)
            text = f"{exc} ({exc.hint})" if exc.hint else str(exc)
            return error_page(request, text, status=status, back=_section(request.path))

    return handler


def _section(path: str) -> str:
    """Where "Go back" leads from an error: the page of the part that failed."""
    for prefix, page_path in (
        ("/ui/files", "/ui/files"),
        ("/ui/download", "/ui/files"),
        ("/ui/backups", "/ui/backups"),
        ("/ui/jobs", "/ui/backups"),
        ("/ui/recovery", "/ui/recovery"),
        ("/ui/repair", "/ui/repair"),
    ):
        if path.startswith(prefix):
            return page_path
    return "/"


def add_ui_routes(app: web.Application, node_dir: Path) -> None:
    sessions = Sessions(node_dir)
    jobs = JobBoard()
    app.on_cleanup.append(lambda _app: jobs.cancel_all())  # before the client closes
    shared_client.install(app, node_dir)

    async def login(request: web.Request) -> web.StreamResponse:
        session = sessions.redeem(request.query.get("ticket", ""))
        if session is None:
            return refusal(
                "This address has been used already or is too old. Run "
                "<code>veil webopen</code> again and open the new address.",
                401,
            )
        response = web.Response(
            status=303, headers={"Location": safe_next(request.query.get("next", "/"))}
        )
        set_session_cookie(response, session)
        return response

    async def logout(request: web.Request, node_dir: Path) -> web.StreamResponse:
        sessions.end(request)
        response = web.Response(status=303, headers={"Location": "/"})
        response.del_cookie("veil_ui", path="/")
        return response

    def get(path: str, route: Route, *, api: bool = False) -> None:
        app.router.add_get(path, _wrap(route, node_dir, sessions, api=api))

    def post(path: str, route: Route, *, api: bool = False) -> None:
        app.router.add_post(path, _wrap(route, node_dir, sessions, api=api))

    home = _wrap(status_page.status_html, node_dir, sessions)

    @web.middleware
    async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/" and request.method in ("GET", "HEAD") and "t" not in request.query:
            return await home(request)
        return await handler(request)

    app.middlewares.append(front_door)
    app.router.add_get("/ui/login", login)
    app.router.add_static("/ui/static/", STATIC, append_version=False)
    post("/ui/logout", logout)
    get("/ui/api/status", status_page.status_json, api=True)
    get("/ui/files", files_page.aliases_html)
    post("/ui/files/alias", files_page.create_alias)
    get("/ui/files/browse", files_page.browse_html)
    get("/ui/api/files", _listing_json, api=True)
    post("/ui/files/upload", files_page.upload)
    post("/ui/files/mkdir", files_page.mkdir)
    get("/ui/download", files_page.download)
    backups_page.add_routes(get, post, jobs)
    recovery_page.add_routes(get, post)
    repair_page.add_routes(get, post, jobs)


async def _listing_json(request: web.Request, node_dir: Path) -> web.Response:
    alias = request.query.get("alias", "")
    parts = files_page.path_parts(request.query.get("path", ""))
    return web.json_response(await files_page.listing(request, node_dir, alias, parts))
