"""A ``StorageClient`` speaking Tahoe's HTTP storage protocol over pinned HTTPS.

One aiohttp session per server address (keep-alive pooling, see ``routes``)
whose connector comes from the ``NetworkProvider`` and pins the server's
certificate by the SPKI hash in its NURL; the swissnum goes in ``Authorization``, secrets in
``X-Tahoe-Authorization`` (digest §5.3, §5.6). Connection failures, timeouts
and pin mismatches become ``ServerUnavailable``; answers outside the protocol
(bad CBOR, a 200 to a Range read, a wrong Content-Range, too many bytes)
become ``RemoteError``; refusals become the matching ``StorageError``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence

import aiohttp

from veil.adapters.http.routes import (
    BROKE,
    CONNECT_TIMEOUT,
    REQUEST_TIMEOUT,
    Route,
    Routes,
    broke_mid_request,
    make_route,
    not_connected,
    request_failure,
)
from veil.adapters.net.tcp import NetworkProvider, TcpProvider
from veil.errors import (
    BadRequest,
    Conflict,
    NotAllowed,
    NotFound,
    QuotaExceeded,
    RemoteError,
    ServerFull,
    ServerUnavailable,
    StorageError,
    Unauthorized,
    UsageError,
)
from veil.formats import base32, wire, wire_batch, wire_mutable
from veil.formats.nurl import NURL, TUBID_LENGTH
from veil.formats.storage_types import IdentifiedServer, TestWrite, TestWriteResult
from veil.formats.wire_batch import BatchUpload, BatchUploadResult
from veil.services.interfaces import AllocateResult, VersionInfo, WriteResult

STATUS_ERRORS: Mapping[int, type[StorageError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: NotAllowed,
    406: BadRequest,
    409: Conflict,
    413: BadRequest,
    415: BadRequest,
    416: BadRequest,
    507: ServerFull,
}
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,19})-([0-9]{1,19})/(\*|[0-9]{1,19})\Z")
_ERROR_BODY = 4096  # bytes of an error answer worth reading


def _secret_headers(**secrets: bytes) -> list[tuple[str, str]]:
    return [
        ("X-Tahoe-Authorization", f"{kind.replace('_', '-')} {base64.b64encode(v).decode()}")
        for kind, v in secrets.items()
    ]


class _Answer:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


_V1 = "/storage/v1"
# A read (or immutable share write) whose connection broke mid-request is sent
# once more on a new connection before the next address: a kept-alive connection
# the server closed, an I2P stream or a Tor circuit that failed under load.
AGAIN_AFTER_BREAK = 1


class HttpStorageClient(IdentifiedServer):
    """One storage server, reached through one NURL or, in turn, several
    (``alternatives``: the other announced NURLs and their providers)."""

    def __init__(
        self,
        nurl: NURL,
        *,
        server_id: str,
        lease_seed: bytes,
        permutation_seed: bytes,
        network: NetworkProvider | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        request_timeout: float = REQUEST_TIMEOUT,
        alternatives: Sequence[tuple[NURL, NetworkProvider]] = (),
    ) -> None:
        if len(lease_seed) != TUBID_LENGTH:
            raise UsageError(f"a lease seed is {TUBID_LENGTH} bytes (the fURL tubid)")
        super().__init__(
            server_id=server_id, lease_seed=lease_seed, permutation_seed=permutation_seed
        )
        pairs = [(nurl, network or TcpProvider()), *alternatives]
        self._routes = Routes(
            [make_route(n, p, connect_timeout, request_timeout) for n, p in pairs]
        )

    @property
    def nurl(self) -> NURL:
        """The address in use: the one that answered last (the first one before)."""
        return self._routes.current.nurl

    @property
    def via(self) -> str:
        """``tcp`` or ``tor``: how this server is reached."""
        return self._routes.current.via

    @property
    def nurls(self) -> list[NURL]:
        return [r.nurl for r in self._routes.routes]

    def _name(self) -> str:
        return f"server {self._server_id[:16]}"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | memoryview | None = None,
        headers: list[tuple[str, str]] | None = None,
        ok: tuple[int, ...] = (200,),
        limit: int = wire.MAX_ANSWER_BODY,
    ) -> _Answer:
        """One request at the first address that takes a connection."""
        failures: list[tuple[Route, str]] = []
        hint = None
        answer = None
        for route in self._routes.in_order():
            for attempt in range(1 + AGAIN_AFTER_BREAK):
                try:
                    answer = await self._request_at(route, method, path, body, headers, ok, limit)
                except (TimeoutError, aiohttp.ClientError, OSError, ServerUnavailable) as exc:
                    why = not_connected(exc, route) or broke_mid_request(exc, method, path)
                    if why is None:
                        raise ServerUnavailable(
                            f"{self._name()} {route.where} {request_failure(exc, route)}"
                        ) from None
                    hint = hint or getattr(exc, "hint", None)
                    if why == BROKE and attempt < AGAIN_AFTER_BREAK:
                        continue
                    failures.append((route, f"{why} (tried twice)" if attempt else why))
                    break
                self._routes.answered(route)
                break
            if answer is not None:
                break
        if answer is None:
            error = self._routes.unreachable(self._name(), failures)
            error.hint = hint
            raise error
        if answer.status in ok:
            return answer
        text = answer.body[:200].decode("utf-8", "replace").strip()
        error_type = STATUS_ERRORS.get(answer.status)
        if answer.status == QuotaExceeded.status and text.startswith(QuotaExceeded.MARK):
            error_type = QuotaExceeded  # a veil server's account over its quota, not full
        if error_type is not None:
            raise error_type(f"{self._name()} refused: {answer.status} {text}".rstrip())
        raise RemoteError(f"{self._name()} answered {answer.status} {text}".rstrip())

    async def _request_at(
        self,
        route: Route,
        method: str,
        path: str,
        body: bytes | memoryview | None,
        headers: list[tuple[str, str]] | None,
        ok: tuple[int, ...],
        limit: int,
    ) -> _Answer:
        """The answer, its body read only up to ``limit`` bytes."""
        session = route.get_session(self._server_id)
        async with session.request(
            method, route.base + path, data=body, headers=headers, ssl=route.pin
        ) as resp:
            status = resp.status
            cap = limit if status in ok else _ERROR_BODY
            if resp.content_length is not None and resp.content_length > cap:
                if status in ok:
                    raise RemoteError(f"{self._name()} sent a larger answer than allowed")
                data = b""
            else:
                chunks, size = [], 0  # joined once: no copy per chunk received
                while size <= cap and (more := await resp.content.read(cap + 1 - size)):
                    chunks.append(more)
                    size += len(more)
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if len(data) > cap and status in ok:
                    raise RemoteError(f"{self._name()} sent a larger answer than allowed")
            return _Answer(status, resp.headers, data[:cap])

    def _cbor(self, answer: _Answer) -> bytes:
        if answer.headers.get("Content-Type", "").split(";")[0].strip().lower() != wire.CBOR:
            raise RemoteError(f"{self._name()} answered without application/cbor")
        return answer.body

    async def get_version(self) -> VersionInfo:
        return wire.decode_version(self._cbor(await self._request("GET", "/version")))

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
        headers = _secret_headers(
            lease_renew_secret=renew_secret,
            lease_cancel_secret=cancel_secret,
            upload_secret=upload_secret,
        )
        body = wire.encode_allocate_request(share_numbers, allocated_size)
        answer = await self._post_cbor(f"/immutable/{base32.b2a(storage_index)}", body, headers)
        return wire.decode_allocate_result(answer)

    async def write_share_chunk(
        self,
        storage_index: bytes,
        share_number: int,
        offset: int,
        data: bytes | memoryview,
        *,
        upload_secret: bytes,
    ) -> WriteResult:
        if len(data) == 0:
            raise UsageError("a share chunk cannot be empty")
        headers = _secret_headers(upload_secret=upload_secret)
        headers.append(("Content-Range", f"bytes {offset}-{offset + len(data) - 1}/*"))
        answer = await self._request(
            "PATCH",
            f"/immutable/{base32.b2a(storage_index)}/{share_number}",
            body=data,
            headers=headers,
            ok=(200, 201),
        )
        result = wire.decode_write_result(self._cbor(answer))
        if (answer.status == 201) != result.complete:
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
        answer = await self._request("GET", f"/immutable/{base32.b2a(storage_index)}/shares")
        return wire.decode_share_list(self._cbor(answer))

    async def read_share_chunk(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        """Up to ``length`` bytes at ``offset``: one bounded Range, only 206 or 204."""
        return await self._ranged("immutable", storage_index, share_number, offset, length)

    async def _ranged(
        self, kind: str, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        if offset < 0 or length < 0:
            raise UsageError("a read needs a non-negative offset and length")
        if length == 0:
            return b""
        answer = await self._request(
            "GET",
            f"/{kind}/{base32.b2a(storage_index)}/{share_number}",
            headers=[("Range", f"bytes={offset}-{offset + length - 1}")],
            ok=(200, 204, 206),
            limit=length,
        )
        if answer.status == 204:
            return b""
        if answer.status != 206:
            raise RemoteError(f"{self._name()} answered a Range read with {answer.status}")
        m = _CONTENT_RANGE.match(answer.headers.get("Content-Range", ""))
        data = answer.body
        if not m or int(m[1]) != offset or int(m[2]) < int(m[1]):
            raise RemoteError(f"{self._name()} sent a bad Content-Range for a read")
        if int(m[2]) >= offset + length:
            raise RemoteError(f"{self._name()} sent more bytes than asked for")
        if int(m[2]) - offset + 1 != len(data):
            raise RemoteError(f"{self._name()} sent a body that disagrees with its Content-Range")
        return data

    async def upload_batch(self, items: list[BatchUpload]) -> list[BatchUploadResult]:
        """veil's batch extension (``wire_batch``): whole small shares, one request."""
        body = wire_batch.encode_upload_request(items)
        answer = await self._post_cbor(
            wire_batch.UPLOAD_PATH.removeprefix(_V1), body, limit=wire_batch.MAX_BATCH_ANSWER
        )
        return wire_batch.decode_upload_answer(answer, len(items))

    async def read_batch(self, storage_indexes: list[bytes]) -> list[dict[int, bytes | int]]:
        answer = await self._post_cbor(
            wire_batch.READ_PATH.removeprefix(_V1),
            wire_batch.encode_read_request(storage_indexes),
            limit=wire_batch.MAX_BATCH_ANSWER,
        )
        return wire_batch.decode_read_answer(answer, len(storage_indexes))

    async def mutable_read_batch(self, storage_index: bytes, length: int) -> dict[int, bytes]:
        """The first ``length`` bytes of every mutable share, in one request."""
        answer = await self._post_cbor(
            wire_batch.MUTABLE_READ_PATH.removeprefix(_V1),
            wire_batch.encode_mutable_read_request(storage_index, length),
            limit=wire_batch.MAX_BATCH_ANSWER,
        )
        return wire_batch.decode_mutable_read_answer(answer, length)

    async def _post_cbor(
        self,
        path: str,
        body: bytes,
        headers: list[tuple[str, str]] | None = None,
        *,
        limit: int = wire.MAX_ANSWER_BODY,
    ) -> bytes:
        """POST a CBOR body; the CBOR answer's bytes."""
        answer = await self._request(
            "POST",
            path,
            body=body,
            headers=[*(headers or []), ("Content-Type", wire.CBOR)],
            limit=limit,
        )
        return self._cbor(answer)

    async def advise_corrupt_share(
        self, storage_index: bytes, share_number: int, reason: str
    ) -> None:
        await self._corrupt("immutable", storage_index, share_number, reason)

    async def _corrupt(
        self, kind: str, storage_index: bytes, share_number: int, reason: str
    ) -> None:
        raw = reason.encode("utf-8")[: wire.MAX_REASON_SENT].decode("utf-8", "ignore") or "corrupt"
        try:
            await self._request(
                "POST",
                f"/{kind}/{base32.b2a(storage_index)}/{share_number}/corrupt",
                body=wire.encode_corrupt_request(raw),
                headers=[("Content-Type", wire.CBOR)],
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

    # -- mutable shares ---------------------------------------------------------------

    async def mutable_list_shares(self, storage_index: bytes) -> frozenset[int]:
        answer = await self._request("GET", f"/mutable/{base32.b2a(storage_index)}/shares")
        return wire.decode_share_list(self._cbor(answer))

    async def mutable_read(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        return await self._ranged("mutable", storage_index, share_number, offset, length)

    async def mutable_read_test_write(
        self,
        storage_index: bytes,
        vectors: dict[int, TestWrite],
        read_vector: list[tuple[int, int]],
        *,
        write_enabler: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
    ) -> TestWriteResult:
        headers = _secret_headers(
            write_enabler=write_enabler,
            lease_renew_secret=renew_secret,
            lease_cancel_secret=cancel_secret,
        )
        answer = await self._post_cbor(
            f"/mutable/{base32.b2a(storage_index)}/read-test-write",
            wire_mutable.encode_rtw_request(vectors, read_vector),
            headers,
        )
        return wire_mutable.decode_rtw_result(answer)

    async def mutable_advise_corrupt(
        self, storage_index: bytes, share_number: int, reason: str
    ) -> None:
        await self._corrupt("mutable", storage_index, share_number, reason)

    async def close(self) -> None:
        await self._routes.close()
