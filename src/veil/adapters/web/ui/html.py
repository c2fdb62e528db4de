"""The web UI's HTML: one page layout, forms that carry the CSRF token, words.

Pages are plain HTML that work without JavaScript (forms post and redirect;
progress pages refresh themselves with ``<meta http-equiv=refresh>``); the
one script (``static/ui.js``) only makes a few things update in place. Every
value put into a page goes through ``esc``. No cap is ever put into a page
or an address: files are named by alias and path.
"""

from __future__ import annotations

import html
import time
from urllib.parse import urlencode

from aiohttp import web

from veil.adapters.web.security import CSRF_FIELD, request_csrf_token

NAV = (
    ("/", "Status"),
    ("/ui/files", "Files"),
    ("/ui/backups", "Backups"),
    ("/ui/recovery", "Recovery"),
    ("/ui/repair", "Repair"),
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def url(route: str, **query: str) -> str:
    return f"{route}?{urlencode(query)}" if query else route


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def when(stamp: float | None) -> str:
    if not stamp:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def hidden_token(request: web.Request) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(request_csrf_token(request))}">'


def form(request: web.Request, action: str, inner: str, *, multipart: bool = False) -> str:
    """A POST form carrying the session's CSRF token (in the query for uploads,
    whose body the guard does not read)."""
    if multipart:
        token = request_csrf_token(request)
        sep = "&" if "?" in action else "?"
        return (
            f'<form method="post" enctype="multipart/form-data" '
            f'action="{esc(action + sep + CSRF_FIELD + "=" + token)}">{inner}</form>'
        )
    return f'<form method="post" action="{esc(action)}">{hidden_token(request)}{inner}</form>'


def page(
    request: web.Request,
    title: str,
    body: str,
    *,
    status: int = 200,
    refresh: int | None = None,
    current: str = "",
) -> web.Response:
    links = "".join(
        f'<a href="{href}"{" aria-current=page" if href == current else ""}>{esc(name)}</a>'
        for href, name in NAV
    )
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{esc(title)} - veil</title>"
        '<link rel="stylesheet" href="/ui/static/style.css">'
        '<script src="/ui/static/ui.js" defer></script></head><body>'
        f'<header><span class="brand">veil</span><nav>{links}</nav></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def notice(text: str, kind: str = "info") -> str:
    return f'<p class="notice {kind}" role="status">{esc(text)}</p>'


def error_page(
    request: web.Request, message: str, *, status: int = 400, back: str = "/"
) -> web.Response:
    body = notice(message, "bad") + f'<p><a href="{esc(back)}">Go back</a></p>'
    return page(request, "Something went wrong", body, status=status)
