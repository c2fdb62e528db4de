"""Reading the requests of Tahoe's HTTP storage protocol: secrets, bodies, Accept.

Shared by the handlers of ``veil.adapters.http.storage_server``; every reader
of a request body waits at most ``BODY_IDLE_TIMEOUT`` seconds for the next
bytes (408 after that), so a client trickling a body cannot hold a request
open for ever. Not for: deciding anything about shares.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re

from aiohttp import web

from veil.errors import BadRequest
from veil.formats import wire

BODY_IDLE_TIMEOUT = 60.0
_MIME = re.compile(r"^([^/\s;]+)/([^/\s;]+)\Z")
RENEW, CANCEL, UPLOAD = "lease-renew-secret", "lease-cancel-secret", "upload-secret"
WRITE_ENABLER = "write-enabler"
SECRET_KINDS = frozenset({RENEW, CANCEL, UPLOAD, WRITE_ENABLER})


async def read_some(request: web.Request, n: int) -> bytes:
    """Up to ``n`` bytes of the body (b"" at its end); 408 when it stalls."""
    try:
        async with asyncio.timeout(BODY_IDLE_TIMEOUT):
            return await request.content.read(n)
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="the request body stalled") from None


async def read_exactly(request: web.Request, n: int) -> bytes | None:
    """Exactly ``n`` bytes of the body, or None if it ends first; 408 when it stalls."""
    chunks, size = [], 0
    while size < n:
        chunk = await read_some(request, min(n - size, 1024 * 1024))
        if not chunk:
            return None
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def text(status: int, message: str = "") -> web.Response:
    return web.Response(status=status, text=message) if message else web.Response(status=status)


def acceptable(header: str | None) -> bool:
    """Tahoe's rule: CBOR only if the *best* Accept entry is exactly application/cbor.

    Best means highest q, then most specific (no wildcards), then first. A
    missing header is fine; ``*/*`` alone is not (digest §5.4).
    """
    if header is None:
        return True
    best: tuple[float, int, int, str] | None = None
    for index, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        m = _MIME.match(fields[0])
        if not m:
            continue
        q = 1.0
        for f in fields[1:]:
            if f.replace(" ", "").lower().startswith("q="):
                try:
                    q = float(f.split("=", 1)[1])
                except ValueError:
                    q = 0.0
        specific = (m[1] != "*") + (m[2] != "*")
        key = (q, specific, -index, fields[0].lower())
        if best is None or key[:3] > best[:3]:
            best = key
    return best is not None and best[0] > 0 and best[3] == wire.CBOR


def secrets_of(request: web.Request, required: frozenset[str]) -> dict[str, bytes]:
    """The X-Tahoe-Authorization secrets; exactly ``required`` kinds, or 400."""
    found: dict[str, bytes] = {}
    for value in request.headers.getall("X-Tahoe-Authorization", []):
        kind, _, encoded = value.strip().partition(" ")
        if kind not in SECRET_KINDS:
            raise BadRequest(f"unknown X-Tahoe-Authorization kind {kind[:40]!r}")
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"bad base64 in X-Tahoe-Authorization {kind}") from None
        if not secret:
            raise BadRequest(f"Failed to decode secret {kind}")
        if kind in (RENEW, CANCEL) and len(secret) != 32:
            raise BadRequest("Lease secrets must be 32 bytes long")
        found[kind] = secret
    if set(found) != required:
        raise BadRequest(f"Expected {sorted(required)} in X-Tahoe-Authorization headers")
    return found


def check_content_type(request: web.Request) -> None:
    ctype = request.headers.get("Content-Type")
    if ctype is not None and ctype.split(";")[0].strip().lower() != wire.CBOR:
        raise web.HTTPUnsupportedMediaType()


async def cbor_body(request: web.Request, limit: int) -> bytes:
    """The request body (CBOR or no Content-Type), refused with 413 past ``limit``."""
    check_content_type(request)
    declared = request.content_length
    if declared is not None and declared > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
    chunks, size = [], 0
    while chunk := await read_some(request, limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
    return b"".join(chunks)


def cbor(request: web.Request, body: bytes, status: int = 200) -> web.Response:
    if not acceptable(request.headers.get("Accept")):
        return text(406)
    return web.Response(status=status, body=body, content_type=wire.CBOR)
