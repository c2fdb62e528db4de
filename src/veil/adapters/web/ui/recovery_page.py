"""The UI's recovery page: make a recovery file, and check one.

The same blobs as ``veil recovery create`` / ``check`` (docs/travel.md),
over ``veil.services.recovery``. Making one: a passphrase (a generated one is
offered; leaving the field empty takes it), rated as it is typed
(``/ui/api/passphrase``, zxcvbn through ``services.recovery.passphrase``;
without JavaScript a weak one is refused on submit), optionally split among
friends (SLIP-39 shares shown once, to be written down). The blob is kept in
this process's memory for ``BLOB_LIFETIME`` seconds and downloaded from a
random address; it is never written to disk by the UI. Checking one: the file,
the passphrase and any shares; then whether the grid still holds every
snapshot it names (a scratch client node, removed afterwards).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from veil.adapters.node import recovery_state as state
from veil.adapters.node.aliases import Aliases
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.web.ui.html import esc, form, notice, page
from veil.adapters.web.ui.shared_client import client_of
from veil.errors import UsageError
from veil.formats import base32
from veil.formats import mutable_caps as mc
from veil.formats.recovery_document import LatestRecord, RecoveryDocument, WriteSecrets
from veil.services.recovery import passphrase as pp
from veil.services.recovery.blob_files import make_blob, open_blob
from veil.services.recovery.latest import read_latest

Register = Callable[..., None]
BLOB_LIFETIME = 600.0
MAX_BLOB = 1 << 20
WORDS = ("very weak", "weak", "fair", "strong", "very strong")
FRIENDS = {"": None, "2-of-3": (2, 3), "3-of-5": (3, 5)}


def verdict(text: str) -> dict[str, Any]:
    if not text:
        return {"score": "", "strong": False, "verdict": "empty: the one made for you is used"}
    r = pp.rate(text)
    words = f"{WORDS[r.score]}: " + (
        "strong enough for a recovery file" if r.strong else "too weak for a recovery file"
    )
    if r.warning:
        words += f" ({r.warning.rstrip('.')})"
    return {"score": r.score, "strong": r.strong, "verdict": words}


def _read_only(cap_text: str) -> str:
    cap = mc.parse_any(cap_text)
    if isinstance(cap, mc.DirCap | mc.SSKWriteCap):
        return mc.attenuate(cap).to_string()
    return cap_text


async def build_document(
    request: web.Request, node_dir: Path, *, with_write_caps: bool
) -> RecoveryDocument:
    """What a new machine needs, as ``veil recovery create`` gathers it."""
    node = NodeDirectory(node_dir)
    aliases = Aliases(node_dir).load()
    async with client_of(request) as client:
        wcap = state.latest_write_cap(node_dir)
        if wcap is None:  # no backup yet: an empty record that backups will fill
            made = await client.mutable_files().create(LatestRecord().to_bytes())
            wcap = made.to_string()
            state.save_latest_write_cap(node_dir, wcap)
        rcap = mc.parse_any(wcap)
        read_cap = rcap.read_cap().to_string() if isinstance(rcap, mc.SSKWriteCap) else wcap
        record = await read_latest(client.mutable_files(), read_cap)
    write = None
    if with_write_caps:
        secrets_ = (node.convergence_secret(), node.lease_secret())
        write = WriteSecrets(base32.b2a(secrets_[0]), base32.b2a(secrets_[1]), wcap)
    else:
        aliases = {n: _read_only(c) for n, c in aliases.items()}
    return RecoveryDocument(
        time.time(), state.grid_settings(node), aliases, read_cap, record, write
    )


def _text(data: Any, name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


def add_routes(get: Register, post: Register) -> None:
    made: dict[str, tuple[float, bytes]] = {}

    def tidy() -> None:
        now = time.monotonic()
        for key in [k for k, (t, _) in made.items() if now - t > BLOB_LIFETIME]:
            del made[key]

    async def overview(request: web.Request, node_dir: Path, problem: str = "") -> web.Response:
        suggested = pp.generate()
        options = "".join(
            f'<option value="{esc(v)}">{esc(v.replace("-of-", " of ") if v else "no")}</option>'
            for v in FRIENDS
        )
        create = form(
            request,
            "/ui/recovery/create",
            "<p>A passphrase made for you (write it down, keep it apart from the file):</p>"
            f'<pre id="suggested">{esc(suggested)}</pre>'
            f'<input type="hidden" name="suggested" value="{esc(suggested)}">'
            "<p><label>Your passphrase (leave empty to take the one above) "
            '<input id="passphrase" name="passphrase" type="password" size="40" '
            'autocomplete="new-password"></label></p>'
            '<p>Strength: <span id="meter" class="meter" data-score="">'
            "checked when you make the file</span></p>"
            f'<p><label>Also split it among friends <select name="friends">{options}'
            "</select></label> (any of them together with the passphrase open it)</p>"
            '<p><label><input type="checkbox" name="write" value="yes"> let backups go on '
            "from the new computer (the file then holds write access)</label></p>"
            '<p><label><input type="checkbox" name="weak_ok" value="yes"> I accept a weak '
            "passphrase</label></p><button>Make the recovery file</button>",
        )
        check = form(
            request,
            "/ui/recovery/check",
            '<p><label>Recovery file <input type="file" name="blob" required></label></p>'
            '<p><label>Passphrase <input name="passphrase" type="password" size="40" '
            'autocomplete="off" required></label></p>'
            "<p><label>Friends' words, one friend per line<br>"
            '<textarea name="shares" rows="3" cols="60"></textarea></label></p>'
            "<button>Check it</button>",
            multipart=True,
        )
        body = (
            (notice(problem, "bad") if problem else "")
            + "<p>A recovery file brings your backups and folders back on a new computer "
            "if this one is lost. Only your passphrase (and your friends' words, if you "
            "split it) can open it.</p>"
            f"<h2>Make a recovery file</h2>{create}<h2>Check a recovery file</h2>{check}"
        )
        return page(
            request, "Recovery", body, current="/ui/recovery", status=400 if problem else 200
        )

    async def create(request: web.Request, node_dir: Path) -> web.Response:
        data = await request.post()
        secret = _text(data, "passphrase") or _text(data, "suggested")
        friends_text = _text(data, "friends")
        if friends_text not in FRIENDS:
            raise UsageError("choose how many friends from the list")
        if not secret:
            raise UsageError("the passphrase is empty")
        rating = pp.rate(secret)
        if not rating.strong and _text(data, "weak_ok") != "yes":
            why = f" ({rating.warning.rstrip('.')})" if rating.warning else ""
            return await overview(
                request,
                node_dir,
                f"That passphrase is too weak for a recovery file{why}. Nothing was made. "
                "Leave the field empty to take the one made for you, or add more words.",
            )
        doc = await build_document(request, node_dir, with_write_caps=_text(data, "write") == "yes")
        friends = FRIENDS[friends_text]
        result = await asyncio.to_thread(make_blob, doc, secret, friends=friends)
        tidy()
        key = secrets.token_urlsafe(18)
        made[key] = (time.monotonic(), result.blob)
        shares = "".join(
            f"<li><p>Friend {i}:</p><pre class=share>{esc(words)}</pre></li>"
            for i, words in enumerate(result.mnemonics, 1)
        )
        body = (
            notice("Your recovery file is ready.", "good")
            + f'<p><a class="button" id="download" href="/ui/recovery/blob/{key}" download>'
            "Download the recovery file</a></p>"
            "<p>Keep it away from this computer (a USB stick, a copy with someone you "
            "trust). The download works for ten minutes; then make a new one.</p>"
            + (
                f"<h2>Your friends' words</h2><p>Write each on paper and give one to each "
                f"friend. Any {friends[0] if friends else 0} of them, with your passphrase, "
                f'open the file. They are shown only now.</p><ol id="shares">{shares}</ol>'
                if shares
                else ""
            )
            + (
                notice(
                    "No backup is recorded yet: back up a folder, then make the file again.", "warn"
                )
                if not doc.latest.tasks
                else ""
            )
            + (
                ""
                if rating.strong
                else notice("The passphrase is weak: anyone with the file may guess it.", "warn")
            )
        )
        return page(request, "Recovery file made", body, current="/ui/recovery")

    async def blob(request: web.Request, node_dir: Path) -> web.Response:
        tidy()
        found = made.get(request.match_info["key"])
        if found is None:
            raise UsageError("this recovery file is gone (ten minutes passed): make a new one")
        return web.Response(
            body=found[1],
            content_type="application/octet-stream",
            headers={"Content-Disposition": "attachment; filename=veil-recovery.blob"},
        )

    async def check(request: web.Request, node_dir: Path) -> web.Response:
        fields: dict[str, bytes] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name in ("blob", "passphrase", "shares"):
                buf = bytearray()
                while chunk := await part.read_chunk(65536):
                    buf += chunk
                    if len(buf) > MAX_BLOB:
                        raise UsageError("that is too big to be a recovery file")
                fields[part.name] = bytes(buf)
        secret = fields.get("passphrase", b"").decode("utf-8", "replace")
        shares = [
            s
            for s in fields.get("shares", b"").decode("utf-8", "replace").splitlines()
            if s.strip()
        ]
        doc, _ = await asyncio.to_thread(open_blob, fields.get("blob", b""), secret, shares)
        note, results = await state.check_on_grid(doc)
        rows = "".join(
            f"<tr><td>{esc(r.task.target)}</td><td>{r.files}</td>"
            f"<td>{'all there' if r.whole else esc(f'{len(r.missing)} missing')}</td></tr>"
            for r in results
        )
        made_at = time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.created))
        body = (
            notice(f"The passphrase opens this file (made {made_at}).", "good")
            + (notice(note) if note else "")
            + (
                '<table id="checked"><thead><tr><th>Backup</th><th>Files</th><th>On the '
                f"storage servers</th></tr></thead><tbody>{rows}</tbody></table>"
                if rows
                else "<p>The file names no backup yet.</p>"
            )
        )
        return page(request, "Recovery file checked", body, current="/ui/recovery")

    async def rate(request: web.Request, node_dir: Path) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            raise UsageError('send JSON: {"passphrase": ...}') from None
        text = data.get("passphrase", "") if isinstance(data, dict) else ""
        return web.json_response(verdict(text if isinstance(text, str) else ""))

    get("/ui/recovery", overview)
    post("/ui/recovery/create", create)
    get("/ui/recovery/blob/{key}", blob)
    post("/ui/recovery/check", check)
    post("/ui/api/passphrase", rate, api=True)
