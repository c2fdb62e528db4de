"""The HTTPS storage protocol on loopback: status codes as a real Tahoe 1.20 answers.

A real ``StorageServer`` over a ``MemoryBackend`` behind ``start_storage_http``;
raw aiohttp requests check the tables of test-vectors.md §7, and the
``HttpStorageClient`` runs a whole cycle, refuses a wrong pin and gives up on
dead servers in time.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from veil.adapters.http.storage_client import HttpStorageClient
from veil.adapters.http.storage_server import RunningServer, start_storage_http
from veil.adapters.http.tls import (
    SpkiPin,
    client_context,
    create_identity,
    server_context,
    spki_hash_of_pem,
)
from veil.adapters.net.tcp import TcpProvider
from veil.adapters.storage.memory import MemoryBackend
from veil.errors import (
    BadRequest,
    Conflict,
    NotAllowed,
    NotFound,
    RemoteError,
    ServerUnavailable,
    Unauthorized,
    UsageError,
)
from veil.formats import base32, wire
from veil.formats.nurl import NURL
from veil.formats.storage_types import TestWrite
from veil.services.storage.server import StorageServer

pytestmark = pytest.mark.integration

SWISSNUM = "cpqn4ejbkqla2rwfjr2oekewjnbecauu"
SI = "pb3i6ones3zf47247cdccc6uxi"
AUTH = "Tahoe-LAFS " + base64.b64encode(SWISSNUM.encode()).decode()
R, C, U, U2 = b"r" * 32, b"c" * 32, b"u" * 20, b"v" * 20
SHARE = bytes(range(48))
Reply = tuple[int, "dict[str, str]", bytes]


def sec(kind: str, value: bytes) -> tuple[str, str]:
    return ("X-Tahoe-Authorization", f"{kind} {base64.b64encode(value).decode()}")


LEASE = [sec("lease-renew-secret", R), sec("lease-cancel-secret", C)]
ALLOC = [*LEASE, sec("upload-secret", U)]
UP = [sec("upload-secret", U)]


def rng(a: int, b: int, total: str = "*") -> tuple[str, str]:
    return ("Content-Range", f"bytes {a}-{b}/{total}")


@dataclass
class Live:
    core: StorageServer
    backend: MemoryBackend
    http: RunningServer
    nurl: NURL
    base: str

    def client(self) -> HttpStorageClient:
        return HttpStorageClient(
            self.nurl,
            server_id="v0-test",
            lease_seed=b"\x01" * 20,
            permutation_seed=b"\x02" * 32,
        )

    async def raw(
        self,
        method: str,
        path: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        auth: str | None = AUTH,
    ) -> Reply:
        """One request with exactly these headers (no automatic Accept/Content-Type)."""
        hdrs = list(headers or [])
        if auth is not None:
            hdrs.append(("Authorization", auth))
        async with (
            aiohttp.ClientSession(skip_auto_headers=("Accept", "Content-Type")) as s,
            s.request(method, self.base + path, headers=hdrs, data=body, ssl=client_context()) as r,
        ):
            return r.status, dict(r.headers), await r.read()

    async def allocate(self, shares: frozenset[int], size: int, secret: bytes = U) -> Reply:
        body = wire.encode_allocate_request(shares, size)
        headers = [*LEASE, sec("upload-secret", secret)]
        return await self.raw("POST", f"/immutable/{SI}", headers=headers, body=body)

    async def patch(self, shnum: int, a: int, data: bytes, secret: bytes = U) -> Reply:
        headers = [sec("upload-secret", secret), rng(a, a + len(data) - 1)]
        return await self.raw("PATCH", f"/immutable/{SI}/{shnum}", headers=headers, body=data)

    async def upload(self, shnum: int, data: bytes = SHARE) -> None:
        assert (await self.allocate(frozenset({shnum}), len(data)))[0] == 200
        assert (await self.patch(shnum, 0, data))[0] == 201


async def start(root: Path) -> Live:
    root.mkdir(parents=True, exist_ok=True)
    key, cert = root / "tls.key", root / "tls.crt"
    create_identity(key, cert)
    backend = MemoryBackend()
    core = StorageServer(backend=backend)
    http = await start_storage_http(
        core, SWISSNUM, host="127.0.0.1", port=0, ssl_context=server_context(key, cert)
    )
    nurl = NURL("pb", spki_hash_of_pem(cert.read_bytes()), "127.0.0.1", http.port, SWISSNUM)
    return Live(core, backend, http, nurl, f"https://127.0.0.1:{http.port}/storage/v1")


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    server = await start(tmp_path / "server")
    yield server
    await server.http.stop()


async def test_authorization_and_negotiation(live: Live) -> None:
    assert (await live.raw("GET", "/version", auth=None))[:3:2] == (
        401,
        b"Wrong Authorization header",
    )
    assert (await live.raw("GET", "/version", auth="Tahoe-LAFS d3Jvbmc="))[0] == 401
    assert (await live.raw("GET", "/version", auth=AUTH.replace("Tahoe-", "tahoe-")))[0] == 401
    assert (await live.raw("GET", "/version", auth=AUTH.replace("=", "")))[0] == 401
    for accept in ("*/*", "application/json", "application/json, application/cbor"):
        assert (await live.raw("GET", "/version", headers=[("Accept", accept)]))[0] == 406
    for accept in ("application/cbor", "*/*;q=0.5, application/cbor", "*/*, application/cbor"):
        assert (await live.raw("GET", "/version", headers=[("Accept", accept)]))[0] == 200
    status, headers, body = await live.raw("GET", "/version")
    assert status == 200 and headers["Content-Type"] == "application/cbor"
    assert body.startswith(bytes.fromhex("a2582f"))  # byte-string keys, as Tahoe
    version = wire.decode_version(body)
    assert version.available_space == version.maximum_immutable_share_size > 0
    # unknown routes are refused before authorization, as Tahoe's router does
    assert (await live.raw("GET", f"/immutable/{SI.upper()}/0", auth=None))[0] == 404
    assert (await live.raw("GET", f"/immutable/{SI}?share=0"))[0] == 405
    assert (await live.raw("GET", f"/immutable/{SI}/0/extra"))[0] == 404


async def test_allocate_table(live: Live) -> None:
    alloc = wire.encode_allocate_request(frozenset({0, 1, 2}), 48)
    p = f"/immutable/{SI}"
    assert (await live.raw("POST", p, headers=LEASE, body=alloc))[0] == 400
    short = [sec("lease-renew-secret", b"x" * 16), sec("lease-cancel-secret", C), *UP]
    assert (await live.raw("POST", p, headers=short, body=alloc))[:3:2] == (
        400,
        b"Lease secrets must be 32 bytes long",
    )
    extra = [*ALLOC, sec("write-enabler", b"w")]
    assert (await live.raw("POST", p, headers=extra, body=alloc))[0] == 400
    odd = [*ALLOC, sec("no-such-secret", b"w")]
    assert (await live.raw("POST", p, headers=odd, body=alloc))[0] == 400
    js = [*ALLOC, ("Content-Type", "application/json")]
    assert (await live.raw("POST", p, headers=js, body=alloc))[0] == 415
    untagged = bytes.fromhex(
        "a26d73686172652d6e756d62657273830001026e616c6c6f63617465642d73697a651830"
    )
    assert (await live.raw("POST", p, headers=ALLOC, body=untagged))[0] == 400
    assert (await live.raw("POST", p, headers=ALLOC, body=b"\xa0" * 9000))[0] == 413
    assert not live.core._uploads  # nothing was allocated by the refusals

    status, headers, body = await live.allocate(frozenset({0, 1, 2}), 48)
    assert status == 200 and headers["Content-Type"] == "application/cbor"
    assert body.hex() == "a26c616c72656164792d68617665d901028069616c6c6f6361746564d9010283000102"
    ctype = [*ALLOC, ("Content-Type", "application/cbor")]
    status, _, body = await live.raw("POST", p, headers=ctype, body=alloc)  # the repeat
    assert status == 200 and wire.decode_allocate_result(body).allocated == set()
    status, _, body = await live.allocate(frozenset({0, 1, 2, 3}), 48, U2)
    assert wire.decode_allocate_result(body).allocated == {3}
    # Accept is checked when the answer is encoded: after allocation, as Tahoe
    bad_accept = [*LEASE, sec("upload-secret", U2), ("Accept", "*/*")]
    five = wire.encode_allocate_request(frozenset({5}), 48)
    assert (await live.raw("POST", p, headers=bad_accept, body=five))[0] == 406
    assert (base32.a2b(SI), 5) in live.core._uploads


async def test_patch_table(live: Live) -> None:
    await live.allocate(frozenset({0, 1}), 48)
    status, headers, body = await live.patch(0, 0, SHARE[:16])
    assert status == 200 and headers["Content-Type"] == "application/cbor"
    assert body == wire.dumps({"required": [{"begin": 16, "end": 48}]})
    p = f"/immutable/{SI}/0"
    with_total = [*UP, rng(16, 31, "48")]
    assert (await live.raw("PATCH", p, headers=with_total, body=SHARE[16:32]))[0] == 200
    assert (await live.patch(0, 8, b"\xff" * 8))[0] == 409
    assert (await live.patch(0, 8, SHARE[8:16]))[0] == 200
    assert (await live.patch(0, 32, SHARE[32:], secret=b"nope"))[0] == 401
    assert (await live.raw("PATCH", p, headers=UP, body=SHARE[32:]))[0] == 416
    for bad in ("bytes 32-/*", "bytes 40-32/*", "bytes 32-47/40", "items 32-47/*", "bytes=32-47"):
        hdrs = [*UP, ("Content-Range", bad)]
        assert (await live.raw("PATCH", p, headers=hdrs, body=SHARE[32:]))[0] == 416
    assert (await live.patch(7, 0, b"ab"))[0] == 404
    assert (await live.patch(1, 40, b"a" * 16))[0] == 500  # past the allocated size
    short = [*UP, rng(32, 47)]
    assert (await live.raw("PATCH", p, headers=short, body=b"x"))[0] == 500
    huge = [*UP, rng(0, 20_000_000)]
    assert (await live.raw("PATCH", p, headers=huge, body=b"x"))[0] == 413
    longer = [*UP, rng(32, 47)]  # body bytes past the range are ignored, as in Tahoe
    status, _, body = await live.raw("PATCH", p, headers=longer, body=SHARE[32:] + b"ignored")
    assert (status, body) == (201, wire.dumps({"required": []}))
    assert (await live.patch(0, 0, b"aa"))[0] == 404
    assert live.backend.shares[(base32.a2b(SI), 0)][0] == SHARE


async def test_read_table(live: Live) -> None:
    await live.upload(0)
    p = f"/immutable/{SI}/0"
    status, h, body = await live.raw("GET", p, headers=[("Range", "bytes=0-47")])
    assert (status, h["Content-Range"], body) == (206, "bytes 0-47/*", SHARE)
    assert h["Content-Type"] == "application/octet-stream"
    status, h, body = await live.raw("GET", p, headers=[("Range", "bytes=10-19")])
    assert (status, h["Content-Range"], body) == (206, "bytes 10-19/*", SHARE[10:20])
    status, h, body = await live.raw("GET", p, headers=[("Range", "bytes=40-99")])
    assert (status, h["Content-Range"], body) == (206, "bytes 40-47/*", SHARE[40:])
    assert (await live.raw("GET", p, headers=[("Range", "bytes=48-99")]))[0:3:2] == (204, b"")
    for bad in ("bytes=5-", "bytes=0-1,3-4", "bytes=-5", "items=0-1", "bytes=9-3"):
        assert (await live.raw("GET", p, headers=[("Range", bad)]))[0] == 416
    status, h, body = await live.raw("GET", p)
    assert (status, body, h["Content-Type"]) == (200, SHARE, "application/octet-stream")
    assert (await live.raw("GET", f"/immutable/{SI}/9", headers=[("Range", "bytes=0-1")]))[0] == 404


async def test_abort_corrupt_lease_list_tables(live: Live) -> None:
    await live.upload(0)
    await live.allocate(frozenset({2}), 48)
    ab = f"/immutable/{SI}/2/abort"
    assert (await live.raw("PUT", ab, headers=[sec("upload-secret", b"nope")]))[0] == 401
    assert (await live.raw("PUT", ab, headers=UP))[0:3:2] == (200, b"")
    assert (await live.raw("PUT", ab, headers=UP))[0] == 404
    assert (await live.raw("PUT", f"/immutable/{SI}/0/abort", headers=UP))[0] == 405

    cor = wire.encode_corrupt_request("bad block")
    assert (await live.raw("POST", f"/immutable/{SI}/0/corrupt", body=cor))[0:3:2] == (200, b"")
    assert live.backend.advisories == [(base32.a2b(SI), 0, "bad block")]
    assert (await live.raw("POST", f"/immutable/{SI}/5/corrupt", body=cor))[0] == 404
    empty = wire.dumps({"reason": ""})
    assert (await live.raw("POST", f"/immutable/{SI}/0/corrupt", body=empty))[0] == 400
    big = wire.encode_corrupt_request("x" * 40000)
    assert (await live.raw("POST", f"/immutable/{SI}/0/corrupt", body=big))[0] == 413

    lease = f"/lease/{SI}"
    assert (await live.raw("PUT", lease, headers=LEASE))[0:3:2] == (204, b"")
    other = [sec("lease-renew-secret", b"n" * 32), sec("lease-cancel-secret", C)]
    assert (await live.raw("PUT", lease, headers=other))[0] == 204
    assert (await live.raw("PUT", f"/lease/{'a' * 26}", headers=LEASE))[0] == 404
    assert (await live.raw("PUT", lease, headers=LEASE[:1]))[0] == 400
    leases = live.backend.get_leases(base32.a2b(SI), 0)
    assert [x.owner for x in leases] == [0, 1]

    status, h, body = await live.raw("GET", f"/immutable/{'a' * 26}/shares")
    assert (status, h["Content-Type"], body) == (200, "application/cbor", b"\xd9\x01\x02\x80")
    assert (await live.raw("GET", f"/immutable/{SI}/shares"))[2] == bytes.fromhex("d9010281 00")


async def test_client_full_cycle(live: Live) -> None:
    client = live.client()
    si = base32.a2b(SI)
    big = os.urandom(2_500_000)  # larger than the server's streaming chunk
    try:
        assert (await client.get_version()).maximum_immutable_share_size > 0
        assert await client.list_shares(si) == frozenset()
        res = await client.allocate_buckets(
            si, frozenset({0, 3, 4}), 100, renew_secret=R, cancel_secret=C, upload_secret=U
        )
        assert res.allocated == {0, 3, 4} and res.already_have == frozenset()
        first = await client.write_share_chunk(si, 0, 0, b"x" * 60, upload_secret=U)
        assert [(r.begin, r.end) for r in first.required] == [(60, 100)]
        assert (
            await client.write_share_chunk(si, 0, 60, memoryview(b"y" * 40), upload_secret=U)
        ).complete
        await client.write_share_chunk(si, 3, 0, b"z", upload_secret=U)
        with pytest.raises(Conflict):
            await client.write_share_chunk(si, 3, 0, b"q", upload_secret=U)
        with pytest.raises(Unauthorized):
            await client.write_share_chunk(si, 3, 1, b"z", upload_secret=b"bad")
        await client.abort_upload(si, 3, upload_secret=U)
        with pytest.raises(NotFound):
            await client.abort_upload(si, 3, upload_secret=U)
        with pytest.raises(NotAllowed):
            await client.abort_upload(si, 0, upload_secret=U)
        assert await client.list_shares(si) == {0}
        assert await client.read_share_chunk(si, 0, 50, 20) == b"x" * 10 + b"y" * 10
        assert await client.read_share_chunk(si, 0, 90, 20) == b"y" * 10
        assert await client.read_share_chunk(si, 0, 100, 20) == b""
        with pytest.raises(NotFound):
            await client.read_share_chunk(si, 1, 0, 5)
        await client.add_or_renew_lease(si, renew_secret=b"s" * 32, cancel_secret=C)
        assert len(live.backend.get_leases(si, 0)) == 2
        with pytest.raises(BadRequest):
            await client.add_or_renew_lease(si, renew_secret=b"s", cancel_secret=C)
        await client.advise_corrupt_share(si, 0, "testing " + "é" * 20000)
        await client.advise_corrupt_share(si, 8, "a 404 is ignored")
        assert live.backend.advisories[0][2].startswith("testing é")

        await client.allocate_buckets(
            si, frozenset({5}), len(big), renew_secret=R, cancel_secret=C, upload_secret=U
        )
        step = 1_000_000
        for off in range(0, len(big), step):
            await client.write_share_chunk(si, 5, off, big[off : off + step], upload_secret=U)
        parts = await asyncio.gather(
            *(client.read_share_chunk(si, 5, off, 700_000) for off in range(0, len(big), 700_000))
        )
        assert b"".join(parts) == big
        assert await client.read_share_chunk(si, 5, 0, len(big) + 10) == big
        status, _, body = await live.raw("GET", f"/immutable/{SI}/5")  # streamed, no Range
        assert status == 200 and body == big
    finally:
        await client.close()


async def test_wrong_pin_is_refused(live: Live, tmp_path: Path) -> None:
    other = await start(tmp_path / "other")
    n = live.nurl
    imposter = NURL(n.scheme, other.nurl.spki_hash, n.host, n.port, n.swissnum)
    bad = HttpStorageClient(imposter, server_id="x", lease_seed=bytes(20), permutation_seed=b"")
    good = live.client()
    try:
        with pytest.raises(ServerUnavailable, match="wrong TLS certificate"):
            await bad.get_version()
        with pytest.raises(ServerUnavailable):  # and again, on a fresh connection
            await bad.list_shares(base32.a2b(SI))
        assert (await good.get_version()).available_space > 0
    finally:
        await bad.close()
        await good.close()
        await other.http.stop()


async def test_closed_port_is_unavailable_quickly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpStorageClient(
        NURL("pb", "A" * 43, "127.0.0.1", port, "x"),
        server_id="gone",
        lease_seed=bytes(20),
        permutation_seed=b"",
        connect_timeout=1,
        request_timeout=2,
    )
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="unreachable"):
        await client.get_version()
    assert time.monotonic() - started < 2
    await client.close()


async def test_silent_server_times_out() -> None:
    release, finished = asyncio.Event(), asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await release.wait()
        writer.close()
        await writer.wait_closed()
        finished.set()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpStorageClient(
        NURL("pb", "A" * 43, "127.0.0.1", port, "x"),
        server_id="mute",
        lease_seed=bytes(20),
        permutation_seed=b"",
        request_timeout=0.5,
    )
    started = time.monotonic()
    try:
        with pytest.raises(ServerUnavailable):
            await client.get_version()
        assert time.monotonic() - started < 2
    finally:
        await client.close()
        release.set()
        await asyncio.wait_for(finished.wait(), 2)
        server.close()
        await server.wait_closed()


Handler = Callable[[web.Request], web.Response]


@pytest.mark.parametrize(
    "answer",
    [
        lambda r: web.Response(status=200, body=SHARE[:10]),  # 200 to a Range read
        lambda r: web.Response(
            status=206, body=SHARE[:10], headers={"Content-Range": "bytes 1-10/*"}
        ),
        lambda r: web.Response(
            status=206, body=SHARE[:20], headers={"Content-Range": "bytes 0-19/*"}
        ),
        lambda r: web.Response(
            status=206, body=SHARE[:5], headers={"Content-Range": "bytes 0-9/*"}
        ),
        lambda r: web.Response(status=206, body=SHARE[:10]),
        lambda r: web.Response(status=500, text="boom"),
    ],
)
async def test_client_refuses_out_of_protocol_reads(tmp_path: Path, answer: Handler) -> None:
    async def read(request: web.Request) -> web.Response:
        return answer(request)

    async def version(request: web.Request) -> web.Response:
        return web.Response(body=b"\xff", content_type="application/cbor")

    app = web.Application()
    app.router.add_get("/storage/v1/immutable/{si}/{shnum}", read)
    app.router.add_get("/storage/v1/version", version)
    create_identity(tmp_path / "k", tmp_path / "c")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", 0, ssl_context=server_context(tmp_path / "k", tmp_path / "c")
    )
    await site.start()
    port = runner.addresses[0][1]
    nurl = NURL("pb", spki_hash_of_pem((tmp_path / "c").read_bytes()), "127.0.0.1", port, "s")
    client = HttpStorageClient(nurl, server_id="odd", lease_seed=bytes(20), permutation_seed=b"")
    try:
        with pytest.raises(RemoteError) as info:
            await client.read_share_chunk(base32.a2b(SI), 0, 0, 10)
        assert not isinstance(info.value, ServerUnavailable)
        with pytest.raises(RemoteError):
            await client.get_version()  # malformed CBOR
    finally:
        await client.close()
        await runner.cleanup()


async def test_provider_connector_enforces_the_pin_by_itself(live: Live, tmp_path: Path) -> None:
    create_identity(tmp_path / "k2", tmp_path / "c2")
    wrong = SpkiPin(spki_hash_of_pem((tmp_path / "c2").read_bytes()))
    results = []
    for pin in (SpkiPin(live.nurl.spki_hash), wrong):
        conn = TcpProvider().connector(
            host="127.0.0.1", port=live.nurl.port, tls=pin, isolation_key="k"
        )
        async with aiohttp.ClientSession(connector=conn) as s:  # no ssl= on the request
            try:
                hdrs = {"Authorization": AUTH, "Accept": wire.CBOR}
                async with s.get(live.base + "/version", headers=hdrs) as r:
                    results.append(r.status)
            except aiohttp.ServerFingerprintMismatch:
                results.append(-1)
    assert results == [200, -1]
    with pytest.raises(UsageError, match="Tor or I2P"):
        TcpProvider().connector(host="abc.onion", port=1, tls=wrong, isolation_key="k")


async def test_mutable_reads_whole_ranged_past_the_end_and_too_wide(live: Live) -> None:
    data = bytes(range(256)) * 4
    si = base32.a2b(SI)
    result = live.core.mutable_read_test_write(
        si,
        {3: TestWrite(writes=((0, data),))},
        [],
        write_enabler=b"w" * 32,
        renew_secret=R,
        cancel_secret=C,
    )
    assert result.success
    p = f"/mutable/{SI}/3"
    status, headers, body = await live.raw("GET", p)
    assert (status, body) == (200, data) and "Content-Range" not in headers
    status, headers, body = await live.raw("GET", p, headers=[("Range", "bytes=1000-5000")])
    assert (status, body, headers["Content-Range"]) == (206, data[1000:], "bytes 1000-1023/*")
    assert (await live.raw("GET", p, headers=[("Range", "bytes=1024-1030")]))[:3:2] == (204, b"")
    assert (await live.raw("GET", p, headers=[("Range", "bytes=5-4")]))[0] == 416
    assert (await live.raw("GET", p, headers=[("Range", "bytes=0-99999999999")]))[0] == 206
    assert (await live.raw("GET", f"/mutable/{SI}/4"))[0] == 404
