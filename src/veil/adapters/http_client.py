"""A ``StorageClient`` speaking Tahoe's HTTP storage protocol over pinned HTTPS.

One aiohttp session per server (keep-alive pooling), the server's certificate
pinned by the SPKI hash in its NURL, the swissnum in ``Authorization``, and
secrets in ``X-Tahoe-Authorization``. Connection failures, timeouts and pin
mismatches become ``ServerUnavailable``; answers outside the protocol become
``RemoteError``; refusals become the matching ``StorageError`` (digest §5.6).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

import aiohttp

from veil.adapters.network import NetworkProvider, TcpProvider
from veil.adapters.tls import SpkiPin
from veil.errors import (
    BadRequest,
    Conflict,
    NotAllowed,
    NotFound,
    RemoteError,
    ServerFull,
    ServerUnavailable,
    StorageError,
    Unauthorized,
)
from veil.formats import base32, wire
from veil.formats.nurl import NURL
from veil.formats.storage_types import IdentifiedServer
from veil.services.interfaces import AllocateResult, VersionInfo, WriteResult

_STATUS_ERRORS: Mapping[int, type[StorageError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: NotAllowed,
    409: Conflict,
    413: BadRequest,
    416: BadRequest,
    507: ServerFull,
}
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\*|\d+)$")


def _secret_headers(**secrets: bytes) -> list[tuple[str, str]]:
    return [
        ("X-Tahoe-Authorization", f"{kind.replace('_', '-')} {base64.b64encode(v).decode()}")
        for kind, v in secrets.items()
    ]


class HttpStorageClient(IdentifiedServer):
    def __init__(
        self,
        nurl: NURL,
        *,
        server_id: str,
        lease_seed: bytes,
        permutation_seed: bytes,
        network: NetworkProvider | None = None,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
    ) -> None:
        super().__init__(
            server_id=server_id, lease_seed=lease_seed, permutation_seed=permutation_seed
        )
        self.nurl = nurl
        self._network = network or TcpProvider()
        self._pin = SpkiPin(nurl.spki_hash)
        host = f"[{nurl.host}]" if ":" in nurl.host else nurl.host
        self._base = f"https://{host}:{nurl.port}/storage/v1"
        self._auth = "Tahoe-LAFS " + base64.b64encode(nurl.swissnum.encode()).decode()
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _name(self) -> str:
        return f"server {self._server_id[:16]}"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = self._network.connector(host=self.nurl.host, isolation_key=self._server_id)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={"Authorization": self._auth, "Accept": wire.CBOR},
                auto_decompress=False,
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | memoryview | None = None,
        headers: list[tuple[str, str]] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[int, Mapping[str, str], bytes]:
        hdrs = list(headers or [])
        if body is not None and not any(h[0] == "Content-Range" for h in hdrs):
            hdrs.append(("Content-Type", wire.CBOR))
        try:
            async with self._get_session().request(
                method, self._base + path, data=body, headers=hdrs, ssl=self._pin
            ) as resp:
                data = await resp.read()
                status = resp.status
                resp_headers = dict(resp.headers)
        except aiohttp.ServerFingerprintMismatch:
            raise ServerUnavailable(
                f"{self._name()} presented the wrong TLS certificate (pin mismatch)"
            ) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ServerUnavailable(
                f"{self._name()} at {self.nurl.host}:{self.nurl.port} is unreachable "
                f"({type(exc).__name__})"
            ) from None
        if status in ok:
            return status, resp_headers, data
        text = data[:200].decode("utf-8", "replace").strip()
        error = _STATUS_ERRORS.get(status)
        if error is not None:
            raise error(f"{self._name()} refused: {status} {text}")
        raise RemoteError(f"{self._name()} answered {status} {text}")

    @staticmethod
    def _expect_cbor(headers: Mapping[str, str]) -> None:
        if headers.get("Content-Type", "").split(";")[0].strip() != wire.CBOR:
            raise RemoteError("server answered without application/cbor")

    async def get_version(self) -> VersionInfo:
        _, headers, data = await self._request("GET", "/version")
        self._expect_cbor(headers)
        return wire.decode_version(data)

    async def allocate_buckets(
        self,
        storage_index: bytes,
        share_numbers: frozenset[int],
        allocated_size: int,
        *,
        renew_secret: bytes,
        cancel_secret: bytes,
        upload_secret: bytes,
    ) -> AllocateResult:
        _, headers, data = await self._request(
            "POST",
            f"/immutable/{base32.b2a(storage_index)}",
            body=wire.encode_allocate_request(share_numbers, allocated_size),
            headers=_secret_headers(
                lease_renew_secret=renew_secret,
                lease_cancel_secret=cancel_secret,
                upload_secret=upload_secret,
            ),
        )
        self._expect_cbor(headers)
        return wire.decode_allocate_result(data)

    async def write_share_chunk(
        self,
        storage_index: bytes,
        share_number: int,
        offset: int,
        data: bytes | memoryview,
        *,
        upload_secret: bytes,
    ) -> WriteResult:
        hdrs = _secret_headers(upload_secret=upload_secret)
        hdrs.append(("Content-Range", f"bytes {offset}-{offset + len(data) - 1}/*"))
        hdrs.append(("Content-Type", "application/octet-stream"))
        status, headers, body = await self._request(
            "PATCH",
            f"/immutable/{base32.b2a(storage_index)}/{share_number}",
            body=data,
            headers=hdrs,
            ok=(200, 201),
        )
        self._expect_cbor(headers)
        result = wire.decode_write_result(body)
        if (status == 201) != result.complete:
            raise RemoteError(f"{self._name()} gave a status that disagrees with its body")
        return result

    async def abort_upload(
        self, storage_index: bytes, share_number: int, *, upload_secret: bytes
    ) -> None:
        await self._request(
            "PUT",
            f"/immutable/{base32.b2a(storage_index)}/{share_number}/abort",
            headers=_secret_headers(upload_secret=upload_secret),
        )

    async def list_shares(self, storage_index: bytes) -> frozenset[int]:
        _, headers, data = await self._request(
            "GET", f"/immutable/{base32.b2a(storage_index)}/shares"
        )
        self._expect_cbor(headers)
        return wire.decode_share_list(data)

    async def read_share_chunk(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        if length <= 0:
            return b""
        status, headers, data = await self._request(
            "GET",
            f"/immutable/{base32.b2a(storage_index)}/{share_number}",
            headers=[("Range", f"bytes={offset}-{offset + length - 1}")],
            ok=(204, 206),
        )
        if status == 204:
            return b""
        m = _CONTENT_RANGE.match(headers.get("Content-Range", ""))
        if not m or int(m[1]) != offset or int(m[2]) - offset + 1 != len(data):
            raise RemoteError(f"{self._name()} sent a bad Content-Range for a read")
        if len(data) > length:
            raise RemoteError(f"{self._name()} sent more bytes than asked for")
        return data

    async def advise_corrupt_share(
        self, storage_index: bytes, share_number: int, reason: str
    ) -> None:
        try:
            await self._request(
                "POST",
                f"/immutable/{base32.b2a(storage_index)}/{share_number}/corrupt",
                body=wire.encode_corrupt_request(reason[:32765] or "corrupt"),
            )
        except NotFound:
            pass  # as Tahoe: a 404 here is ignored

    async def add_or_renew_lease(
        self, storage_index: bytes, *, renew_secret: bytes, cancel_secret: bytes
    ) -> None:
        await self._request(
            "PUT",
            f"/lease/{base32.b2a(storage_index)}",
            headers=_secret_headers(
                lease_renew_secret=renew_secret, lease_cancel_secret=cancel_secret
            ),
            ok=(204,),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
