"""Errors of the web API in Tahoe's words: status codes and bodies as Tahoe 1.20's.

``WebError`` is Tahoe's own (a code and a line of text). ``error_middleware``
turns every ``VeilError`` a handler raises into the status Tahoe gives for the
same failure (``humanize_exception`` in Tahoe's web/common.py): 404 for a
missing child, 409 for ``replace=false`` over an existing one, 410 when a file
cannot be rebuilt, 400 for malformed input. Errors met while walking a path
are rendered as Tahoe's small HTML error page, errors of the operation itself
as ``text/plain;charset=utf-8``, as Tahoe does. Bodies never hold a cap: every
``VeilError`` message is scrubbed where it is made, and anything that is not
a ``VeilError`` (a bug) becomes a 500 whose details go only to the log, by type.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from veil.errors import (
    CapabilityError,
    ConfigError,
    DownloadError,
    FormatError,
    NotEnoughSharesError,
    StorageError,
    UsageError,
    VeilError,
)
from veil.formats.cap_display import scrub

log = logging.getLogger(__name__)

NOT_ENOUGH_SHARES = (
    "NotEnoughSharesError: This indicates that some servers were unavailable, or that "
    "shares have been lost to server departure, hard drive failure, or disk corruption. "
    "You should perform a filecheck on this object to learn more.\n\n"
    "The full error message is:\n"
)
UNRECOVERABLE = (
    "UnrecoverableFileError: the directory (or mutable file) could not be retrieved, "
    "because there were insufficient good shares. This might indicate that no servers "
    "were connected, insufficient servers were connected, the URI was corrupt, or that "
    "shares have been lost due to server departure, hard drive failure, or disk "
    "corruption. You should perform a filecheck on this object to learn more."
)
EXISTING_CHILD = "There was already a child by that name, and you asked me to not replace it."
EMPTY_COMPONENT = "The webapi does not allow empty pathname components, i.e. a double slash"


class WebError(VeilError):
    """Tahoe's ``WebError``: an HTTP status and one line for the user."""

    def __init__(self, text: str, code: int = 400, *, page: bool = False) -> None:
        super().__init__(text)
        self.code = code
        self.page = page  # rendered as Tahoe's HTML error page (errors met on a path)


def no_such_child(name: str) -> WebError:
    return WebError(f"No such child: {name}", 404, page=True)


def existing_child() -> WebError:
    return WebError(EXISTING_CHILD, 409)


def not_implemented(what: str) -> WebError:
    return WebError(f"{what} is not implemented by this veil gateway yet", 501)


def status_and_text(exc: VeilError) -> tuple[int, str]:
    """Tahoe's (status, body) for a failure (its web/common.py ``humanize_exception``)."""
    if isinstance(exc, WebError):
        return exc.code, str(exc)
    if isinstance(exc, NotEnoughSharesError):
        return 410, NOT_ENOUGH_SHARES + str(exc)
    if isinstance(exc, DownloadError):
        return 410, UNRECOVERABLE
    if isinstance(exc, CapabilityError | UsageError | FormatError):
        return 400, str(exc)
    if isinstance(exc, StorageError):
        return exc.status, str(exc)
    if isinstance(exc, ConfigError):
        return 500, str(exc)
    return 500, str(exc)  # upload, remote and server failures: as Tahoe, a 500


def error_page(code: int, text: str) -> web.Response:
    """Tahoe's (Twisted's) small HTML page for an error met while walking a path."""
    body = (
        f"\n<html>\n  <head><title>{code} - Error</title></head>\n  <body>\n"
        f"    <h1>Error</h1>\n    <p>{html.escape(text)}</p>\n  </body>\n</html>\n"
    )
    return web.Response(status=code, body=body.encode(), content_type="text/html", charset="utf-8")


def error_text(code: int, text: str) -> web.Response:
    return web.Response(
        status=code,
        body=text.encode(),
        headers={"Content-Type": "text/plain;charset=utf-8"},
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except VeilError as exc:
        code, text = status_and_text(exc)
        if code >= 500:
            log.warning("web API %s failed (%d): %s", request.method, code, exc)
        if isinstance(exc, WebError) and exc.page:
            return error_page(code, text)
        return error_text(code, text)
    except Exception as exc:  # a bug: the body says nothing, the log names only the type
        log.error(
            "web API %s: internal error %s: %s",
            request.method,
            type(exc).__name__,
            scrub(str(exc))[:200],
        )
        return error_text(500, "Internal Server Error")
