"""Hostile and broken servers: the client never trusts them and never returns a wrong byte."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from veil.adapters.http.storage_client import HttpStorageClient
from veil.adapters.http.tls import create_identity, server_context, spki_hash_of_pem
from veil.errors import RemoteError, ServerFull, UnhappinessError
from veil.formats import wire
from veil.formats.nurl import NURL
from veil.formats.params import EncodingParameters
from veil.formats.storage_types import VersionInfo
from veil.services.broker import StorageBroker
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.testing.local_grid import local_grid

from .conftest import SWISSNUM, LiveServer

pytestmark = pytest.mark.integration


async def hostile_server(tmp_path: Path, mode: str) -> tuple[web.AppRunner, NURL]:
    """A real HTTPS server that claims every share and answers reads badly."""

    async def version(request: web.Request) -> web.Response:
        body = wire.encode_version(VersionInfo(10**12, 10**12, 10**12, b"evil"))
        return web.Response(body=body, content_type="application/cbor")

    async def shares(request: web.Request) -> web.Response:
        if mode == "garbage-cbor":
            return web.Response(body=b"\xff\x00garbage", content_type="application/cbor")
        return web.Response(
            body=wire.encode_share_list(frozenset(range(10))), content_type="application/cbor"
        )

    async def read(request: web.Request) -> web.Response:
        rng = request.headers.get("Range", "bytes=0-0")[6:]
        start, end = (int(x) for x in rng.split("-"))
        n = end - start + 1
        if mode == "200-not-206":
            return web.Response(body=os.urandom(n), content_type="application/octet-stream")
        if mode == "too-long":
            return web.Response(
                status=206,
                body=os.urandom(n + 10),
                headers={"Content-Range": f"bytes {start}-{end + 10}/*"},
                content_type="application/octet-stream",
            )
        return web.Response(
            status=206,
            body=os.urandom(n),
            headers={"Content-Range": f"bytes {start}-{end}/*"},
            content_type="application/octet-stream",
        )

    async def corrupt(request: web.Request) -> web.Response:
        return web.Response(status=200)

    app = web.Application()
    app.router.add_get("/storage/v1/version", version)
    app.router.add_get("/storage/v1/immutable/{si}/shares", shares)
    app.router.add_get("/storage/v1/immutable/{si}/{shnum}", read)
    app.router.add_post("/storage/v1/immutable/{si}/{shnum}/corrupt", corrupt)
    create_identity(tmp_path / "k", tmp_path / "c")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", 0, ssl_context=server_context(tmp_path / "k", tmp_path / "c")
    )
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    spki = spki_hash_of_pem((tmp_path / "c").read_bytes())
    return runner, NURL("pb", spki, "127.0.0.1", port, "swiss")


@pytest.fixture(params=["random-bytes", "200-not-206", "too-long", "garbage-cbor"])
async def hostile(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[HttpStorageClient]:
    runner, nurl = await hostile_server(tmp_path, request.param)
    client = HttpStorageClient(
        nurl, server_id="v0-evil", lease_seed=b"\0" * 20, permutation_seed=b"\0"
    )  # first on every ring
    client.mode = request.param  # type: ignore[attr-defined]
    yield client
    await client.close()
    await runner.cleanup()


async def test_download_ignores_a_hostile_server(hostile: HttpStorageClient) -> None:
    broker, servers = local_grid(10)
    data = os.urandom(200_000)
    up = Uploader(broker, EncodingParameters(), lease_secret=b"l" * 32, convergence_secret=None)
    cap = (await up.upload_bytes(data)).cap
    mixed = StorageBroker([hostile, *servers])
    dl = Downloader(mixed)
    assert await dl.download_bytes(cap) == data
    for s in servers[:7]:  # now the hostile server's shares are needed, and refused
        s.fail = True
    assert await Downloader(mixed).download_bytes(cap) == data


async def test_protocol_violations_are_remote_errors(hostile: HttpStorageClient) -> None:
    mode = hostile.mode  # type: ignore[attr-defined]
    if mode == "garbage-cbor":
        with pytest.raises(RemoteError):
            await hostile.list_shares(b"\1" * 16)
    elif mode in ("200-not-206", "too-long"):
        with pytest.raises(RemoteError):
            await hostile.read_share_chunk(b"\1" * 16, 0, 0, 100)


async def test_truncated_patch_body_is_refused(live_server: LiveServer) -> None:
    import aiohttp

    si = "a" * 26
    auth = "Tahoe-LAFS " + base64.b64encode(SWISSNUM.encode()).decode()
    up = ("X-Tahoe-Authorization", "upload-secret " + base64.b64encode(b"u").decode())
    lease = [
        ("X-Tahoe-Authorization", f"{k} " + base64.b64encode(b"x" * 32).decode())
        for k in ("lease-renew-secret", "lease-cancel-secret")
    ]
    base = f"https://127.0.0.1:{live_server.http.port}/storage/v1/immutable/{si}"
    async with aiohttp.ClientSession(
        headers={"Authorization": auth, "Accept": "application/cbor"}
    ) as s:
        r = await s.post(
            base,
            data=wire.encode_allocate_request(frozenset({0}), 100),
            headers=[*lease, up, ("Content-Type", "application/cbor")],
            ssl=False,
        )
        assert r.status == 200
        r = await s.patch(
            base + "/0", data=b"short", headers=[up, ("Content-Range", "bytes 0-99/*")], ssl=False
        )
        assert r.status == 500
        r = await s.patch(
            base + "/0",
            data=b"x",
            headers=[up, ("Content-Range", f"bytes 0-{64 * 2**20}/*")],
            ssl=False,
        )
        assert r.status == 413
    assert live_server.core.list_shares(b"\0" * 16) == set()


async def test_full_servers_give_a_clear_error() -> None:
    broker, servers = local_grid(10)
    for s in servers:
        core = s.service
        core.reserved_space = core.backend.free_space()  # type: ignore[attr-defined]
    up = Uploader(broker, EncodingParameters(), lease_secret=b"l" * 32, convergence_secret=None)
    with pytest.raises(UnhappinessError, match="only 0 server"):
        await up.upload_bytes(os.urandom(10_000))
    assert ServerFull.status == 507
