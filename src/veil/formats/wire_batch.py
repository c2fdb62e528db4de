"""veil's batch extension of the HTTP storage protocol: many small shares per request.

Between a veil client and a veil server only (docs/interop.md, "Extensions");
a Tahoe server, or a veil server without it, gets the standard calls. A server
offers it in its version answer's ``application-version`` (``veil/<version>
+batch-v1``): Tahoe 1.20 clients validate the version map against a closed
CDDL schema and refuse any extra key, so the byte string is the one place a
server can say more without breaking them.

    POST /storage/v1/veil-batch/immutable     write whole small shares
    POST /storage/v1/veil-batch/read          read whole small shares
    POST /storage/v1/veil-batch/mutable-read  the start of every mutable share
                                              (``+mutable-read-v1``)

Upload body: an array of items, each ``{"storage-index": bstr .size 16,
"allocated-size": uint, "renew-secret": bstr .size 32, "cancel-secret": bstr
.size 32, "upload-secret": bstr .size 32, "shares": {uint => bstr}}`` where
every share's bytes are the whole share (exactly ``allocated-size``). For each
item the server does what allocate + one PATCH per share would: same secrets,
leases, size limits and space checks; a share is either complete or absent.
Answer: one entry per item, ``{"already-have": set, "written": set}`` or
``{"status": uint, "reason": tstr}`` for an item refused as a whole.

Read body: an array of ``{"storage-index": bstr .size 16}``; answer: one map
per item, ``{uint => bstr}`` whole shares of at most ``MAX_BATCH_SHARE`` bytes,
or ``{uint => uint}`` (the share's length) for larger ones, which are read with
the standard ranged GET.

Mutable-read body: ``{"storage-index": bstr .size 16, "length": uint}``;
answer: ``{uint => bstr}``, the first ``length`` bytes (at most
``MAX_MUTABLE_PREFIX``) of every mutable share of that storage index, each read
in one piece as the standard ranged GET reads it, so a write never falls inside
one share's bytes. It stands for the share listing and the first read of each
share that a server map otherwise makes: one round trip instead of two.

Request decoders raise ``BadRequest``; answer decoders raise ``RemoteError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veil.errors import BadRequest, RemoteError, VeilError
from veil.formats.wire import MAX_SHARES, _head, _map, _share_set, _uint, dumps, loads

EXTENSION = b"batch-v1"
MUTABLE_READ_EXTENSION = b"mutable-read-v1"
MUTABLE_READ_PATH = "/storage/v1/veil-batch/mutable-read"
MAX_MUTABLE_PREFIX = 64 * 1024
UPLOAD_PATH = "/storage/v1/veil-batch/immutable"
READ_PATH = "/storage/v1/veil-batch/read"
MAX_BATCH_ITEMS = 256
MAX_BATCH_SHARE = 128 * 1024  # larger shares are written and read the standard way
MAX_BATCH_BODY = 8 * 1024 * 1024
MAX_BATCH_ANSWER = MAX_BATCH_BODY + 64 * 1024

_UPLOAD_KEYS = frozenset(
    {"storage-index", "allocated-size", "renew-secret", "cancel-secret", "upload-secret", "shares"}
)


@dataclass(frozen=True)
class BatchUpload:
    """Whole shares of one storage index, with the secrets an allocate needs."""

    storage_index: bytes
    allocated_size: int
    renew_secret: bytes = field(repr=False)
    cancel_secret: bytes = field(repr=False)
    upload_secret: bytes = field(repr=False)
    shares: dict[int, bytes] = field(repr=False)


@dataclass(frozen=True)
class BatchUploadResult:
    """What happened to one item: shares the server had, shares now written,
    or the status and reason of a refusal of the whole item."""

    already_have: frozenset[int] = frozenset()
    written: frozenset[int] = frozenset()
    status: int = 0
    reason: str = ""

    @property
    def refused(self) -> bool:
        return self.status != 0


def offers_batch(application_version: bytes, extension: bytes = EXTENSION) -> bool:
    """Whether a server's ``application-version`` announces this extension."""
    words = application_version.split()
    return bool(words) and words[0].startswith(b"veil/") and b"+" + extension in words[1:]


def _bytes(v: Any, name: str, size: int | None, error: type[VeilError]) -> bytes:
    if not isinstance(v, bytes) or (size is not None and len(v) != size):
        want = f"{size} bytes" if size is not None else "a byte string"
        raise error(f"{name} must be {want}")
    return v


def _array(v: Any, what: str, error: type[VeilError]) -> list[Any]:
    if not isinstance(v, list):
        raise error(f"{what} must be a CBOR array")
    if not 0 < len(v) <= MAX_BATCH_ITEMS:
        raise error(f"{what} must have 1 to {MAX_BATCH_ITEMS} items")
    return v


# -- upload ----------------------------------------------------------------------------

_KEY = {k: dumps(k) for k in (*sorted(_UPLOAD_KEYS), "already-have", "written")}
_UPLOAD_HEAD = _head(5, 6) + _KEY["storage-index"]
_ANSWER_HEAD = _head(5, 2) + _KEY["already-have"]
_SET_HEAD = _head(6, 258)


def _bstr(raw: bytes) -> bytes:
    return _head(2, len(raw)) + raw


def _int_set(numbers: frozenset[int]) -> bytes:
    items = sorted(numbers)
    return _SET_HEAD + _head(4, len(items)) + b"".join(_head(0, n) for n in items)


def encode_upload_request(items: list[BatchUpload]) -> bytes:
    """The bytes ``dumps`` gives for the items' maps (keys in this order, shares
    sorted), put together directly: the body is most of a small file's cost."""
    parts = [_head(4, len(items))]
    for i in items:
        parts += (
            _UPLOAD_HEAD,
            _bstr(i.storage_index),
            _KEY["allocated-size"],
            _head(0, i.allocated_size),
            _KEY["renew-secret"],
            _bstr(i.renew_secret),
            _KEY["cancel-secret"],
            _bstr(i.cancel_secret),
            _KEY["upload-secret"],
            _bstr(i.upload_secret),
            _KEY["shares"],
            _head(5, len(i.shares)),
        )
        for shnum, share in sorted(i.shares.items()):
            parts += (_head(0, shnum), _head(2, len(share)), share)
    return b"".join(parts)


def decode_upload_request(data: bytes | memoryview) -> list[BatchUpload]:
    if len(data) > MAX_BATCH_BODY:
        raise BadRequest(f"a batch is larger than {MAX_BATCH_BODY} bytes")
    items = []
    for raw in _array(loads(data, BadRequest), "a batch upload", BadRequest):
        doc = _map(raw, _UPLOAD_KEYS, "a batch item", BadRequest, True)
        size = _uint(doc["allocated-size"], "allocated-size", BadRequest)
        if size > MAX_BATCH_SHARE:
            raise BadRequest(f"a batched share is at most {MAX_BATCH_SHARE} bytes")
        shares = doc["shares"]
        if not isinstance(shares, dict) or not 0 < len(shares) <= MAX_SHARES:
            raise BadRequest(f"shares must be a map of 1 to {MAX_SHARES} shares")
        parsed = {}
        for shnum, body in shares.items():
            if _uint(shnum, "a share number", BadRequest) > MAX_SHARES - 1:
                raise BadRequest("a share number is at most 255")
            if len(_bytes(body, "a share", None, BadRequest)) != size:
                raise BadRequest("every batched share must be exactly allocated-size bytes")
            parsed[shnum] = body
        items.append(
            BatchUpload(
                _bytes(doc["storage-index"], "storage-index", 16, BadRequest),
                size,
                _bytes(doc["renew-secret"], "renew-secret", 32, BadRequest),
                _bytes(doc["cancel-secret"], "cancel-secret", 32, BadRequest),
                _bytes(doc["upload-secret"], "upload-secret", 32, BadRequest),
                parsed,
            )
        )
    return items


def encode_upload_answer(results: list[BatchUploadResult]) -> bytes:
    """The bytes ``dumps`` gives for the answer's maps, put together directly."""
    parts = [_head(4, len(results))]
    for r in results:
        if r.refused:
            parts.append(dumps({"status": r.status, "reason": r.reason}))
        else:
            parts += (
                _ANSWER_HEAD,
                _int_set(r.already_have),
                _KEY["written"],
                _int_set(r.written),
            )
    return b"".join(parts)


def decode_upload_answer(data: bytes | memoryview, count: int) -> list[BatchUploadResult]:
    if len(data) > MAX_BATCH_ANSWER:
        raise RemoteError("a batch answer is too large")
    raw = loads(data, RemoteError)
    if not isinstance(raw, list) or len(raw) != count:
        raise RemoteError("a batch answer must have one entry per item")
    results = []
    for doc in raw:
        if isinstance(doc, dict) and "status" in doc:
            doc = _map(doc, frozenset({"status", "reason"}), "a refusal", RemoteError, True)
            status = _uint(doc["status"], "status", RemoteError)
            if not 400 <= status <= 599 or not isinstance(doc["reason"], str):
                raise RemoteError("a refusal needs an HTTP error status and a reason")
            results.append(BatchUploadResult(status=status, reason=doc["reason"][:200]))
            continue
        doc = _map(doc, frozenset({"already-have", "written"}), "a batch result", RemoteError, True)
        results.append(
            BatchUploadResult(
                _share_set(doc["already-have"], "already-have", RemoteError),
                _share_set(doc["written"], "written", RemoteError),
            )
        )
    return results


# -- read ------------------------------------------------------------------------------


def encode_read_request(storage_indexes: list[bytes]) -> bytes:
    return dumps([{"storage-index": si} for si in storage_indexes])


def decode_read_request(data: bytes | memoryview) -> list[bytes]:
    if len(data) > 64 * 1024:
        raise BadRequest("a batch read request is too large")
    out = []
    for raw in _array(loads(data, BadRequest), "a batch read", BadRequest):
        doc = _map(raw, frozenset({"storage-index"}), "a batch read item", BadRequest, True)
        out.append(_bytes(doc["storage-index"], "storage-index", 16, BadRequest))
    return out


def encode_read_answer(answers: list[dict[int, bytes | int]]) -> bytes:
    return dumps([dict(sorted(a.items())) for a in answers])


def decode_read_answer(data: bytes | memoryview, count: int) -> list[dict[int, bytes | int]]:
    """Per item: whole small shares (bytes) and lengths of larger ones (int)."""
    if len(data) > MAX_BATCH_ANSWER:
        raise RemoteError("a batch answer is too large")
    raw = loads(data, RemoteError)
    if not isinstance(raw, list) or len(raw) != count:
        raise RemoteError("a batch answer must have one entry per item")
    out: list[dict[int, bytes | int]] = []
    for doc in raw:
        if not isinstance(doc, dict) or len(doc) > MAX_SHARES:
            raise RemoteError("a batch read answer item must be a map of shares")
        item: dict[int, bytes | int] = {}
        for shnum, value in doc.items():
            if _uint(shnum, "a share number", RemoteError) > MAX_SHARES - 1:
                raise RemoteError("a share number is at most 255")
            if isinstance(value, bytes):
                if len(value) > MAX_BATCH_SHARE:
                    raise RemoteError("a batched share is larger than the extension allows")
            else:
                _uint(value, "a share length", RemoteError)
            item[shnum] = value
        out.append(item)
    return out


# -- mutable read ----------------------------------------------------------------------


def encode_mutable_read_request(storage_index: bytes, length: int) -> bytes:
    return dumps({"storage-index": storage_index, "length": length})


def decode_mutable_read_request(data: bytes | memoryview) -> tuple[bytes, int]:
    if len(data) > 1024:
        raise BadRequest("a mutable batch read request is too large")
    doc = _map(
        loads(data, BadRequest),
        frozenset({"storage-index", "length"}),
        "a mutable batch read",
        BadRequest,
        True,
    )
    length = _uint(doc["length"], "length", BadRequest)
    if not 0 < length <= MAX_MUTABLE_PREFIX:
        raise BadRequest(f"a mutable batch read takes 1 to {MAX_MUTABLE_PREFIX} bytes per share")
    return _bytes(doc["storage-index"], "storage-index", 16, BadRequest), length


def encode_mutable_read_answer(prefixes: dict[int, bytes]) -> bytes:
    return dumps(dict(sorted(prefixes.items())))


def decode_mutable_read_answer(data: bytes | memoryview, length: int) -> dict[int, bytes]:
    """The shares' first bytes; a share longer than asked or a bad number is refused."""
    if len(data) > MAX_SHARES * (length + 16) + 16:
        raise RemoteError("a mutable batch answer is too large")
    raw = loads(data, RemoteError)
    if not isinstance(raw, dict):
        raise RemoteError("a mutable batch answer must be a map of shares")
    out: dict[int, bytes] = {}
    for shnum, value in raw.items():
        if _uint(shnum, "a share number", RemoteError) > MAX_SHARES - 1:
            raise RemoteError("a share number is at most 255")
        if not isinstance(value, bytes) or len(value) > length:
            raise RemoteError("a mutable batch answer holds more bytes than asked for")
        out[shnum] = value
    return out
