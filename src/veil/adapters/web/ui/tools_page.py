"""The UI's recovery and repair pages.

Recovery (a way back to your aliases when this computer is lost: a blob
sealed with a passphrase, and shares for friends) and repair status (how
healthy the stored files are) are built over ``veil.services.recovery`` and
``veil.services.checker``; until those services are part of this node the
pages say so in plain words instead of offering what cannot work yet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from veil.adapters.web.ui.html import notice, page
from veil.adapters.web.ui.jobs import JobBoard

Register = Callable[..., None]


def add_routes(get: Register, post: Register, jobs: JobBoard) -> None:
    async def recovery(request: web.Request, node_dir: Path) -> web.Response:
        body = (
            "<p>Recovery keeps a way back to your files if this computer is lost: "
            "a sealed copy of your aliases that only your passphrase (or enough of "
            "your friends together) can open.</p>"
            + notice(
                "Not available in this version yet: recovery is still being built. "
                "Until then, keep a copy of your aliases file in a safe place.",
                "warn",
            )
        )
        return page(request, "Recovery", body, current="/ui/recovery")

    async def repair(request: web.Request, node_dir: Path) -> web.Response:
        body = (
            "<p>Repair checks that each of your files still has enough pieces on the "
            "storage servers, and puts back the missing ones.</p>"
            + notice(
                "Not available in this version yet: repair status is still being built.", "warn"
            )
        )
        return page(request, "Repair", body, current="/ui/repair")

    get("/ui/recovery", recovery)
    get("/ui/repair", repair)
