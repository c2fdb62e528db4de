"""Who may use the web UI: one-time login tickets and the sessions they open.

The UI reaches the user's aliases (their write caps) by name, so unlike
Tahoe's web API, where a cap is the permission, it must not answer every
process on the machine. ``veil webopen`` (which can read ``private/``)
writes a one-time ticket: a random value whose SHA-256 names a 0600 file in
``private/web-tickets/``. Opening ``/ui/login?ticket=…`` once, within
``TICKET_LIFETIME`` seconds, removes that file and sets a session cookie
(``HttpOnly``, ``SameSite=Strict``, gone when the browser closes and when the
node restarts: sessions live only in this process's memory). A used or old
ticket is worth nothing, so a login address left in a browser's history or
a terminal opens nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from veil.adapters.web.security import SESSION_COOKIE

TICKET_LIFETIME = 120.0
SESSION_LIFETIME = 12 * 3600.0
TICKET_DIR = "web-tickets"


def ticket_dir(node_dir: Path) -> Path:
    return node_dir / "private" / TICKET_DIR


def _name(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("ascii", "replace")).hexdigest()


def issue_ticket(node_dir: Path) -> str:
    """A new one-time ticket (what ``veil webopen`` puts in the address it prints)."""
    folder = ticket_dir(node_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    now = time.time()
    for old in folder.iterdir():  # tidy: tickets nobody used
        try:
            if now - old.stat().st_mtime > TICKET_LIFETIME:
                old.unlink()
        except OSError:
            pass
    ticket = secrets.token_urlsafe(24)
    fd = os.open(folder / _name(ticket), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    return ticket


def login_path(ticket: str, next_path: str = "/") -> str:
    return f"/ui/login?ticket={quote(ticket)}&next={quote(next_path, safe='/')}"


def safe_next(text: str) -> str:
    """Only a path of this UI: never another site (no open redirect)."""
    if text == "/" or (text.startswith("/ui/") and not text.startswith("/ui/login")):
        return text if "\\" not in text and "//" not in text else "/"
    return "/"


class Sessions:
    def __init__(self, node_dir: Path) -> None:
        self.node_dir = node_dir
        self._open: dict[str, float] = {}

    def redeem(self, ticket: str) -> str | None:
        """A new session for a fresh, unused ticket; None otherwise."""
        if not ticket or len(ticket) > 100:
            return None
        path = ticket_dir(self.node_dir) / _name(ticket)
        try:
            age = time.time() - path.stat().st_mtime
            path.unlink()
        except OSError:
            return None
        if age > TICKET_LIFETIME:
            return None
        session = secrets.token_urlsafe(32)
        self._open[session] = time.monotonic()
        return session

    def valid(self, request: web.Request) -> bool:
        session = request.cookies.get(SESSION_COOKIE, "")
        started = self._open.get(session)
        if started is None:
            return False
        if time.monotonic() - started > SESSION_LIFETIME:
            del self._open[session]
            return False
        return True

    def end(self, request: web.Request) -> None:
        self._open.pop(request.cookies.get(SESSION_COOKIE, ""), None)


def set_session_cookie(response: web.StreamResponse, session: str) -> None:
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Strict", path="/")
