"""A real HTTPS storage server on 127.0.0.1 under abuse and with damaged shares.

Item 17: tricklers (slowloris) and silent sockets are closed within the
timeouts, never more than the connection limit are open, and a well-behaved
client is served all along. Item 20: corrupt containers on disk answer 404
(the share is absent), the log gets one line and no traceback, and the other
shares are still served.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import uvloop

from tests.integration.conftest import SWISSNUM
from veil.adapters.http.connection_guard import ConnectionLimits, GuardedServer
from veil.adapters.http.storage_server import RunningServer, start_storage_http
from veil.adapters.http.tls import client_context, create_identity, server_context
from veil.adapters.storage.disk import DiskBackend
from veil.formats import base32
from veil.services.storage.server import StorageServer

pytestmark = pytest.mark.integration

AUTH = {
    "Authorization": "Tahoe-LAFS " + base64.b64encode(SWISSNUM.encode()).decode(),
    "Accept": "application/cbor",
}
R, C, U = b"r" * 32, b"c" * 32, b"u" * 32
HEAD_TIMEOUT = 2.0


@dataclass
class Live:
    core: StorageServer
    http: RunningServer


async def start(root: Path, limits: ConnectionLimits | None = None) -> Live:
    root.mkdir(parents=True, exist_ok=True)
    key, cert = root / "tls.key", root / "tls.crt"
    create_identity(key, cert)
    core = StorageServer(backend=DiskBackend(root / "storage"))
    http = await start_storage_http(
        core,
        SWISSNUM,
        host="127.0.0.1",
        port=0,
        ssl_context=server_context(key, cert),
        limits=limits,
    )
    return Live(core, http)


async def get(port: int, path: str) -> tuple[int, bytes]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as s,
        s.get(
            f"https://127.0.0.1:{port}/storage/v1{path}", headers=AUTH, ssl=client_context()
        ) as r,
    ):
        return r.status, await r.read()


async def trickle(port: int, *, tls: bool) -> float:
    """Connect, then send a request head a few bytes at a time; seconds until closed."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context() if tls else None
        )
    except (OSError, ConnectionError):
        return time.monotonic() - started  # pushed out during its handshake
    try:
        if tls:
            writer.write(b"GET /storage/v1/version HTTP/1.1\r\nHost: x\r\n")
        for i in range(100):  # 50 s of trickling at most; the server must cut it first
            if tls:
                writer.write(f"X-Slow-{i}: a\r\n".encode())
                await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), 0.5) == b"":
                    break
            except TimeoutError:
                continue
    except (OSError, ConnectionError):
        pass
    finally:
        writer.close()
    return time.monotonic() - started


async def test_tricklers_are_closed_and_good_clients_served(tmp_path: Path) -> None:
    limits = ConnectionLimits(max_connections=100, head_timeout=HEAD_TIMEOUT, idle_timeout=2.0)
    live = await start(tmp_path / "s", limits)
    port = live.http.port
    guard = live.http.runner.server
    assert isinstance(guard, GuardedServer)
    try:
        began = time.monotonic()
        tricklers = [
            asyncio.create_task(trickle(port, tls=i % 6 != 0))  # one in six never does TLS
            for i in range(300)
        ]
        served = []
        for _ in range(6):  # a well-behaved client, all along
            await asyncio.sleep(0.5)
            served.append((await get(port, "/version"))[0])
            assert len(guard.open) <= limits.max_connections + 1
        lived = await asyncio.wait_for(asyncio.gather(*tricklers), 20)
        elapsed = time.monotonic() - began
    finally:
        await live.http.stop()
    assert served == [200] * 6
    assert max(lived) < HEAD_TIMEOUT + 3, sorted(lived)[-5:]
    assert guard.timeouts > 0 and guard.evicted >= 300 - limits.max_connections - 10
    assert elapsed < 15


async def test_an_idle_keep_alive_connection_is_closed(tmp_path: Path) -> None:
    live = await start(tmp_path / "s", ConnectionLimits(head_timeout=2.0, idle_timeout=1.0))
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", live.http.port, ssl=client_context()
        )
        auth = AUTH["Authorization"].encode()
        writer.write(b"GET /storage/v1/version HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth)
        writer.write(b"\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        while await asyncio.wait_for(reader.read(65536), 5):
            pass  # the rest of the response, then the server closes the idle connection
        assert time.monotonic() - started < 3
        writer.close()
    finally:
        await live.http.stop()


def _put(root: Path, si: bytes, shnum: int, content: bytes) -> None:
    name = base32.b2a(si)
    path = root / "storage" / "shares" / name[:2] / name / str(shnum)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.mark.parametrize(
    "content",
    [
        b"\xde\xad\xbe\xef garbage, not a container",
        b"\x00\x00\x00\x02\x00",  # truncated header
        bytes.fromhex("0000000200000010000000ff") + b"x" * 16,  # 255 leases that are not there
        b"Tahoe mutable container v2\n broken",
    ],
)
async def test_corrupt_containers_answer_404_and_log_one_line(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    live = await start(tmp_path / "s")
    si = bytes(range(16))
    live.core.allocate_buckets(
        si, frozenset({0}), 4, renew_secret=R, cancel_secret=C, upload_secret=U
    )
    live.core.write_share_chunk(si, 0, 0, b"good", upload_secret=U)
    _put(tmp_path / "s", si, 5, content)
    _put(tmp_path / "s", si, 6, content)
    caplog.set_level(logging.INFO)
    b32 = base32.b2a(si)
    try:
        for _ in range(2):
            for kind in ("immutable", "mutable"):
                assert (await get(live.http.port, f"/{kind}/{b32}/5"))[0] == 404
                assert (await get(live.http.port, f"/{kind}/{b32}/6"))[0] == 404
            assert await get(live.http.port, f"/immutable/{b32}/0") == (200, b"good")
            listed = await get(live.http.port, f"/immutable/{b32}/shares")
            assert listed == (200, bytes.fromhex("d9010281") + b"\x00")  # CBOR set {0}
    finally:
        await live.http.stop()
    lines = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(lines) == 2  # shares 5 and 6, once each
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.CRITICAL]
    assert b32 not in caplog.text  # the storage index is shortened in the log


def test_the_guard_works_on_uvloop(tmp_path: Path) -> None:
    # `veil run` runs on uvloop, whose transports are not asyncio.Transport
    async def scenario() -> tuple[int, float]:
        live = await start(tmp_path / "s", ConnectionLimits(head_timeout=1.0))
        try:
            slow = asyncio.create_task(trickle(live.http.port, tls=True))
            status = (await get(live.http.port, "/version"))[0]
            return status, await asyncio.wait_for(slow, 10)
        finally:
            await live.http.stop()

    status, lived = uvloop.run(scenario())
    assert status == 200 and lived < 4
