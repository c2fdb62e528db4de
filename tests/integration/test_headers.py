"""What a client sends to servers and introducers carries no software fingerprint
(issue 10, item 4).

A raw TLS listener on 127.0.0.1 (no HTTP library on the server side) records
the exact request bytes of the storage client and of the introducer client;
every request has a fixed, neutral header set: no ``User-Agent``, no
library-chosen ``Accept`` or ``Accept-Encoding``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from veil.adapters.http.storage_client import HttpStorageClient
from veil.adapters.http.tls import create_identity, server_context, spki_hash_of_pem
from veil.adapters.node.introducer import fetch_servers, publish
from veil.errors import VeilError
from veil.formats.announcement import sign
from veil.formats.nurl import NURL

pytestmark = pytest.mark.integration
SWISS = "cpqn4ejbkqla2rwfjr2oekewjnbecauu"
SI = b"\x01" * 16


@dataclass
class Recorder:
    nurl: NURL
    requests: list[list[tuple[str, str]]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rec: Recorder) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            first, *rest = head.decode("latin-1").split("\r\n")
            headers = [tuple(h.split(": ", 1)) for h in rest if h]
            rec.lines.append(first)
            rec.requests.append([(k.lower(), v) for k, v in headers])
            length = int(dict(rec.requests[-1]).get("content-length", "0"))
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[Recorder]:
    create_identity(tmp_path / "k", tmp_path / "c")
    ctx = server_context(tmp_path / "k", tmp_path / "c")
    rec: Recorder | None = None

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        assert rec is not None
        await _serve(r, w, rec)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    spki = spki_hash_of_pem((tmp_path / "c").read_bytes())
    rec = Recorder(NURL("pb", spki, "127.0.0.1", port, SWISS))
    async with server:
        yield rec
        server.close()


def _names(request: list[tuple[str, str]]) -> list[str]:
    return sorted(k for k, _ in request)


async def _swallow(coro: object) -> None:
    try:
        await coro  # type: ignore[misc]
    except VeilError:
        pass  # the listener answers 404 to everything: only the request matters


async def test_storage_client_sends_a_fixed_neutral_header_set(recorder: Recorder) -> None:
    seed = hashlib.sha256(b"s").digest()
    client = HttpStorageClient(
        recorder.nurl, server_id="v0-x", lease_seed=seed[:20], permutation_seed=seed
    )
    try:
        await _swallow(client.get_version())
        await _swallow(client.list_shares(SI))
        await _swallow(client.read_share_chunk(SI, 0, 0, 100))
        await _swallow(
            client.allocate_buckets(
                SI,
                frozenset({0}),
                1000,
                renew_secret=b"r" * 32,
                cancel_secret=b"c" * 32,
                upload_secret=b"u" * 32,
            )
        )
        await _swallow(client.write_share_chunk(SI, 0, 0, b"x" * 10, upload_secret=b"u" * 32))
    finally:
        await client.close()
    base = ["accept", "accept-encoding", "authorization", "host"]
    assert [_names(r) for r in recorder.requests] == [
        base,
        base,
        sorted([*base, "range"]),
        sorted([*base, "content-length", "content-type", *["x-tahoe-authorization"] * 3]),
        sorted([*base, "content-length", "content-range", "x-tahoe-authorization"]),
    ]
    for request in recorder.requests:
        h = dict(request)
        assert h["accept"] == "application/cbor"
        assert h["accept-encoding"] == "identity"
        assert h["host"] == recorder.nurl.netloc
        assert "user-agent" not in h
    assert all(line.endswith(" HTTP/1.1") for line in recorder.lines)


async def test_introducer_client_sends_a_fixed_neutral_header_set(
    recorder: Recorder, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    signed = sign({"service-name": "storage"}, ed25519.Ed25519PrivateKey.generate())
    await _swallow(publish(recorder.nurl, signed))
    await fetch_servers(recorder.nurl, tmp_path / "cache.json")  # falls back to the cache
    post, get = recorder.requests
    base = ["accept", "accept-encoding", "authorization", "host"]
    assert _names(post) == sorted([*base, "content-length", "content-type"])
    assert _names(get) == base
    for request in recorder.requests:
        h = dict(request)
        assert h["accept"] == "application/json"
        assert h["accept-encoding"] == "identity"
        assert "user-agent" not in h
    assert dict(post)["content-type"] == "application/json"
