"""The UI's start page: can this computer store files safely right now?

Which storage servers were reached and how (directly or through Tor), and
whether enough were reached for an upload to be spread as the node's
``shares.happy`` asks. The same facts as JSON at ``/ui/api/status``. The
facts are those of ``veil status`` (``veil.adapters.node.server_status``);
onion addresses are not shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from veil.adapters.node.server_status import server_rows
from veil.adapters.web.ui.html import esc, notice, page, size, when
from veil.adapters.web.ui.shared_client import client_of
from veil.errors import VeilError

HOW = {"tcp": "directly", "tor": "through Tor", "i2p": "through I2P"}


async def grid_status(request: web.Request) -> dict[str, Any]:
    async with client_of(request) as client:
        for server in client.broker.servers:  # the client is long-lived: ask each one now
            client.broker.forget_version(server.server_id)
        rows = await server_rows(client)
        params = client.params
    reached = sum(1 for r in rows if r["connected"])
    return {
        "servers": [
            {
                "nickname": r["nickname"] or r["server_id"][:12],
                "connected": r["connected"],
                "via": r["via"],
                "how": HOW.get(r["via"], r["via"]),
                "available_space": r.get("available_space"),
                "last_seen": r.get("last_seen"),
                "problem": None if r["connected"] else r.get("error", ""),
            }
            for r in rows
        ],
        "reached": reached,
        "known": len(rows),
        "needed": params.needed,
        "happy": params.happy,
        "total": params.total,
        "happiness_reachable": reached >= params.happy,
    }


def _verdict(s: dict[str, Any]) -> str:
    if s["happiness_reachable"]:
        return notice(
            f"Ready. {s['reached']} of {s['known']} storage servers answered; uploads need "
            f"{s['happy']}. Your files are spread so that any {s['needed']} pieces rebuild them.",
            "good",
        )
    if s["reached"] >= s["needed"]:
        return notice(
            f"Reading works, saving does not yet: {s['reached']} of {s['known']} storage "
            f"servers answered, and saving a file needs {s['happy']}. Wait a little and "
            "reload, or check this computer's connection.",
            "warn",
        )
    return notice(
        f"Not connected: {s['reached']} of {s['known']} storage servers answered "
        f"(reading needs {s['needed']}, saving needs {s['happy']}). Check the network "
        "connection (or Tor) and reload this page.",
        "bad",
    )


def _table(servers: list[dict[str, Any]]) -> str:
    if not servers:
        return "<p>This computer knows no storage servers yet.</p>"
    rows = "".join(
        "<tr>"
        f"<td>{esc(s['nickname'])}</td>"
        f"<td>{'yes' if s['connected'] else 'no'}</td>"
        f"<td>{esc(s['how'])}</td>"
        f"<td>{esc(size(s['available_space']) if s['connected'] else '-')}</td>"
        f"<td>{esc(when(s['last_seen']))}</td>"
        f"<td>{esc(s['problem'] or '')}</td>"
        "</tr>"
        for s in servers
    )
    return (
        '<table id="servers"><thead><tr><th>Server</th><th>Answered</th><th>Reached</th>'
        "<th>Free space</th><th>Last answer</th><th>Problem</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


async def status_html(request: web.Request, node_dir: Path) -> web.Response:
    try:
        s = await grid_status(request)
    except VeilError as exc:
        body = notice(f"The storage servers cannot be asked: {exc}", "bad")
        return page(request, "Status", body, current="/")
    body = (
        f'<div id="verdict">{_verdict(s)}</div>'
        "<h2>Storage servers</h2>"
        f"{_table(s['servers'])}"
        '<p><a class="button" href="/">Check again</a></p>'
        "<h2>What next</h2><ul>"
        '<li><a href="/ui/files">Your files</a>: look at, save and fetch files</li>'
        '<li><a href="/ui/backups">Backups</a>: save a whole folder, bring it back</li>'
        '<li><a href="/ui/recovery">Recovery</a>: a way back in if this computer is lost</li>'
        "</ul>"
    )
    return page(request, "Status", body, current="/")


async def status_json(request: web.Request, node_dir: Path) -> web.Response:
    try:
        return web.json_response(await grid_status(request))
    except VeilError as exc:
        return web.json_response({"error": str(exc)}, status=503)
