"""The HTTPS storage protocol on loopback: status codes as a real Tahoe 1.20 answers."""

from __future__ import annotations

import base64
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest

from veil.errors import Conflict, NotFound, ServerUnavailable, Unauthorized
from veil.formats import base32, wire
from veil.formats.nurl import NURL

from .conftest import SWISSNUM, LiveServer, start_live_server

pytestmark = pytest.mark.integration

SI = "ipyccq7zkvlnf22ghlklp2klbq"
AUTH = "Tahoe-LAFS " + base64.b64encode(SWISSNUM.encode()).decode()
R, C, U = b"r" * 32, b"c" * 32, b"u" * 20


def sec(kind: str, value: bytes) -> tuple[str, str]:
    return ("X-Tahoe-Authorization", f"{kind} {base64.b64encode(value).decode()}")


LEASE = [sec("lease-renew-secret", R), sec("lease-cancel-secret", C)]


class Raw:
    """Raw HTTPS requests, to check status codes exactly."""

    def __init__(self, server: LiveServer) -> None:
        self.base = f"https://127.0.0.1:{server.http.port}/storage/v1"
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.ctx = ctx

    async def __call__(
        self,
        method: str,
        path: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        auth: str | None = AUTH,
    ) -> tuple[int, dict[str, str], bytes]:
        hdrs = list(headers or [])
        if auth is not None:
            hdrs.append(("Authorization", auth))
        async with (
            aiohttp.ClientSession(skip_auto_headers=("Accept", "Content-Type")) as s,
            s.request(method, self.base + path, headers=hdrs, data=body, ssl=self.ctx) as r,
        ):
            return r.status, dict(r.headers), await r.read()


async def test_status_codes_match_tahoe(live_server: LiveServer) -> None:
    raw = Raw(live_server)
    assert (await raw("GET", "/version", auth=None))[0] == 401
    assert (await raw("GET", "/version", auth="Tahoe-LAFS d3Jvbmc="))[0] == 401
    assert (await raw("GET", "/version", auth=AUTH.replace("Tahoe-LAFS", "tahoe-lafs")))[0] == 401
    assert (await raw("GET", "/version", headers=[("Accept", "*/*")]))[0] == 406
    assert (await raw("GET", "/version", headers=[("Accept", "application/json")]))[0] == 406
    status, headers, body = await raw("GET", "/version")
    assert status == 200 and headers["Content-Type"] == "application/cbor"
    assert wire.decode_version(body).available_space > 0
    assert body.startswith(bytes.fromhex("a2582f"))  # byte-string keys, as Tahoe

    alloc = wire.encode_allocate_request(frozenset({0, 1, 2}), 48)
    assert (await raw("POST", f"/immutable/{SI}", headers=LEASE, body=alloc))[0] == 400
    short = [
        sec("lease-renew-secret", b"x" * 16),
        sec("lease-cancel-secret", C),
        sec("upload-secret", U),
    ]
    assert (await raw("POST", f"/immutable/{SI}", headers=short, body=alloc))[0] == 400
    full = [*LEASE, sec("upload-secret", U)]
    js = [*full, ("Content-Type", "application/json")]
    assert (await raw("POST", f"/immutable/{SI}", headers=js, body=alloc))[0] == 415
    untagged = bytes.fromhex(
        "a26d73686172652d6e756d62657273830001026e616c6c6f63617465642d73697a651830"
    )
    assert (await raw("POST", f"/immutable/{SI}", headers=full, body=untagged))[0] == 400
    assert (await raw("POST", f"/immutable/{SI}", headers=full, body=b"\x00" * 9000))[0] == 413
    status, _, body = await raw("POST", f"/immutable/{SI}", headers=full, body=alloc)
    assert status == 200 and wire.decode_allocate_result(body).allocated == {0, 1, 2}
    status, _, body = await raw("POST", f"/immutable/{SI}", headers=full, body=alloc)
    assert wire.decode_allocate_result(body).allocated == set()

    up = [sec("upload-secret", U)]
    p = f"/immutable/{SI}/0"
    status, h, body = await raw(
        "PATCH", p, headers=[*up, ("Content-Range", "bytes 0-15/*")], body=b"a" * 16
    )
    assert status == 200 and h["Content-Type"] == "application/cbor"
    assert wire.decode_write_result(body).required[0].begin == 16
    assert (
        await raw("PATCH", p, headers=[*up, ("Content-Range", "bytes 16-31/48")], body=b"a" * 16)
    )[0] == 200
    assert (
        await raw("PATCH", p, headers=[*up, ("Content-Range", "bytes 0-15/*")], body=b"b" * 16)
    )[0] == 409
    assert (
        await raw("PATCH", p, headers=[*up, ("Content-Range", "bytes 0-15/*")], body=b"a" * 16)
    )[0] == 200
    bad = [sec("upload-secret", b"nope"), ("Content-Range", "bytes 32-47/*")]
    assert (await raw("PATCH", p, headers=bad, body=b"a" * 16))[0] == 401
    assert (await raw("PATCH", p, headers=up, body=b"a" * 16))[0] == 416
    assert (
        await raw(
            "PATCH",
            f"/immutable/{SI}/9",
            headers=[*up, ("Content-Range", "bytes 0-1/*")],
            body=b"ab",
        )
    )[0] == 404
    assert (
        await raw("PATCH", p, headers=[*up, ("Content-Range", "bytes 40-55/*")], body=b"a" * 16)
    )[0] == 500
    status, _, body = await raw(
        "PATCH", p, headers=[*up, ("Content-Range", "bytes 32-47/*")], body=b"a" * 16
    )
    assert status == 201 and wire.decode_write_result(body).complete
    assert (await raw("PATCH", p, headers=[*up, ("Content-Range", "bytes 0-1/*")], body=b"aa"))[
        0
    ] == 404

    status, h, body = await raw("GET", p, headers=[("Range", "bytes=0-47")])
    assert (status, h["Content-Range"], body) == (206, "bytes 0-47/*", b"a" * 48)
    assert h["Content-Type"] == "application/octet-stream"
    status, h, body = await raw("GET", p, headers=[("Range", "bytes=40-99")])
    assert (status, h["Content-Range"], len(body)) == (206, "bytes 40-47/*", 8)
    assert (await raw("GET", p, headers=[("Range", "bytes=48-99")]))[0] == 204
    assert (await raw("GET", p, headers=[("Range", "bytes=5-")]))[0] == 416
    assert (await raw("GET", p, headers=[("Range", "bytes=0-1,3-4")]))[0] == 416
    assert (await raw("GET", p))[0:3:2] == (200, b"a" * 48)
    assert (await raw("GET", f"/immutable/{SI}/7", headers=[("Range", "bytes=0-1")]))[0] == 404
    assert (await raw("GET", f"/immutable/{SI.upper()}/0"))[0] == 404
    assert (await raw("GET", f"/immutable/{SI}?share=0"))[0] in (404, 405)

    ab = f"/immutable/{SI}/1/abort"
    assert (await raw("PUT", ab, headers=[sec("upload-secret", b"nope")]))[0] == 401
    assert (await raw("PUT", ab, headers=up))[0] == 200
    assert (await raw("PUT", ab, headers=up))[0] == 404
    assert (await raw("PUT", f"/immutable/{SI}/0/abort", headers=up))[0] == 405

    cor = wire.encode_corrupt_request("bad block")
    assert (await raw("POST", f"/immutable/{SI}/0/corrupt", body=cor))[0] == 200
    assert (await raw("POST", f"/immutable/{SI}/5/corrupt", body=cor))[0] == 404
    assert (await raw("POST", f"/immutable/{SI}/0/corrupt", body=wire.dumps({"reason": ""})))[
        0
    ] == 400

    assert (await raw("PUT", f"/lease/{SI}", headers=LEASE))[0] == 204
    assert (
        await raw(
            "PUT",
            f"/lease/{SI}",
            headers=[sec("lease-renew-secret", b"n" * 32), sec("lease-cancel-secret", C)],
        )
    )[0] == 204
    assert (await raw("PUT", f"/lease/{'a' * 26}", headers=LEASE))[0] == 404
    assert (await raw("PUT", f"/lease/{SI}", headers=LEASE[:1]))[0] == 400
    status, _, body = await raw("GET", f"/immutable/{'a' * 26}/shares")
    assert status == 200 and wire.decode_share_list(body) == set()
    status, _, body = await raw("GET", f"/immutable/{SI}/shares")
    assert wire.decode_share_list(body) == {0}
    leases = live_server.core.backend.get_leases(base32.a2b(SI), 0)
    assert [x.owner for x in leases] == [0, 1]


async def test_client_full_cycle(live_server: LiveServer) -> None:
    client = live_server.client()
    si = base32.a2b(SI)
    try:
        v = await client.get_version()
        assert v.maximum_immutable_share_size > 0
        res = await client.allocate_buckets(
            si, frozenset({0, 3}), 100, renew_secret=R, cancel_secret=C, upload_secret=U
        )
        assert res.allocated == {0, 3}
        assert not (await client.write_share_chunk(si, 0, 0, b"x" * 60, upload_secret=U)).complete
        assert (await client.write_share_chunk(si, 0, 60, b"y" * 40, upload_secret=U)).complete
        with pytest.raises(Conflict):
            await client.write_share_chunk(
                si, 3, 0, b"z", upload_secret=U
            ) and await client.write_share_chunk(si, 3, 0, b"q", upload_secret=U)
        with pytest.raises(Unauthorized):
            await client.write_share_chunk(si, 3, 1, b"z", upload_secret=b"bad")
        await client.abort_upload(si, 3, upload_secret=U)
        assert await client.list_shares(si) == {0}
        assert await client.read_share_chunk(si, 0, 50, 20) == b"x" * 10 + b"y" * 10
        assert await client.read_share_chunk(si, 0, 100, 20) == b""
        with pytest.raises(NotFound):
            await client.read_share_chunk(si, 1, 0, 5)
        await client.add_or_renew_lease(si, renew_secret=R, cancel_secret=C)
        await client.advise_corrupt_share(si, 0, "testing")
        await client.advise_corrupt_share(si, 8, "ignored 404")
    finally:
        await client.close()


async def test_wrong_pin_is_refused(live_server: LiveServer, tmp_path: Path) -> None:
    other = await start_live_server(tmp_path / "other")
    try:
        n = live_server.nurl
        imposter = NURL(n.scheme, other.nurl.spki_hash, n.host, n.port, n.swissnum)
        client = live_server.client()
        client.nurl = imposter
        from veil.adapters.http_client import HttpStorageClient

        bad = HttpStorageClient(
            imposter, server_id="x", lease_seed=b"\0" * 20, permutation_seed=b""
        )
        with pytest.raises(ServerUnavailable, match="wrong TLS certificate"):
            await bad.get_version()
        await bad.close()
        await client.close()
    finally:
        await other.http.stop()


async def test_closed_port_is_unavailable_quickly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from veil.adapters.http_client import HttpStorageClient

    client = HttpStorageClient(
        NURL("pb", "A" * 43, "127.0.0.1", port, "x"),
        server_id="gone",
        lease_seed=b"\0" * 20,
        permutation_seed=b"",
        connect_timeout=2,
        request_timeout=5,
    )
    with pytest.raises(ServerUnavailable, match="unreachable"):
        await client.get_version()
    await client.close()
