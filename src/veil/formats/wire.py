"""CBOR messages of Tahoe's HTTP storage protocol, with schemas and limits (§5.4, §5.5).

A small strict CBOR codec covers exactly what the protocol uses: unsigned
integers, byte and text strings, arrays, maps, and sets as tag 258 around an
array. Anything else (floats, negative integers, other tags, indefinite
lengths, trailing bytes, nesting deeper than ``MAX_DEPTH``, duplicate keys) is
refused. Request decoders raise ``BadRequest``; decoders of answers raise
``RemoteError`` (the server broke the protocol). Nothing else escapes.

The encoders reproduce Tahoe's bytes: maps in the order written, sets sorted,
shortest integer heads, and byte-string keys in the version message.
"""

from __future__ import annotations

from typing import Any

from veil.errors import BadRequest, RemoteError, VeilError
from veil.formats.storage_types import (
    PROTOCOL_V1,
    AllocateResult,
    ByteRange,
    VersionInfo,
    WriteResult,
)

CBOR = "application/cbor"
MAX_ALLOCATE_BODY = 8192
MAX_CORRUPT_BODY = 32768
MAX_ANSWER_BODY = 1024 * 1024  # any CBOR answer a client will read
MAX_REASON = 32765  # Tahoe's CDDL limit, in bytes of UTF-8
MAX_REASON_SENT = MAX_CORRUPT_BODY - 11  # the longest reason whose request fits the body cap
MAX_SHARES = 256
MAX_DEPTH = 8
UINT_MAX = 2**64 - 1
_SET_TAG = 258
_SIMPLE = {20: False, 21: True, 22: None}

# -- the codec ---------------------------------------------------------------------


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def _encode(value: Any, out: list[bytes]) -> None:
    if value is False or value is True or value is None:
        out.append({False: b"\xf4", True: b"\xf5", None: b"\xf6"}[value])
    elif isinstance(value, int):
        out.append(_head(0, value) if value >= 0 else _head(1, -1 - value))
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(_head(2, len(raw)) + raw)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out.append(_head(3, len(raw)) + raw)
    elif isinstance(value, list | tuple):
        out.append(_head(4, len(value)))
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        out.append(_head(5, len(value)))
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
    elif isinstance(value, set | frozenset):
        out.append(_head(6, _SET_TAG))
        if all(isinstance(x, int) for x in value):
            items = [dumps(x) for x in sorted(value)]
        else:
            items = sorted(dumps(x) for x in value)
        out.append(_head(4, len(items)))
        out.extend(items)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def dumps(value: Any) -> bytes:
    """CBOR bytes of ``value`` (ints, bytes, str, lists, dicts, sets, bools, None)."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes | memoryview, error: type[VeilError]) -> None:
        self.data = bytes(data)
        self.pos = 0
        self.error = error

    def fail(self, why: str) -> VeilError:
        return self.error(f"malformed CBOR body: {why}")

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise self.fail("truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def head(self) -> tuple[int, int]:
        first = self.take(1)[0]
        major, info = first >> 5, first & 31
        if info < 24:
            return major, info
        if info > 27:
            raise self.fail("indefinite lengths and reserved values are not allowed")
        return major, int.from_bytes(self.take(1 << (info - 24)), "big")

    def item(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail("nested too deeply")
        major, n = self.head()
        if major == 0:
            return n
        if major in (2, 3):
            raw = self.take(n)
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("text is not UTF-8") from None
        if major == 4:
            if n > len(self.data) - self.pos:
                raise self.fail("truncated")
            return [self.item(depth + 1) for _ in range(n)]
        if major == 5:
            if 2 * n > len(self.data) - self.pos:
                raise self.fail("truncated")
            out: dict[Any, Any] = {}
            for _ in range(n):
                key = self.item(depth + 1)
                if not isinstance(key, str | bytes | int) or isinstance(key, bool):
                    raise self.fail("map keys must be strings or share numbers")
                if key in out:
                    raise self.fail("duplicate map key")
                out[key] = self.item(depth + 1)
            return out
        if major == 6 and n == _SET_TAG:
            items = self.item(depth + 1)
            if not isinstance(items, list) or not all(
                isinstance(x, int | str | bytes) for x in items
            ):
                raise self.fail("tag 258 must wrap an array of scalars")
            return frozenset(items)
        if major == 7 and n in _SIMPLE:
            return _SIMPLE[n]
        raise self.fail(f"major type {major} is not used by this protocol")


def loads(data: bytes | memoryview, error: type[VeilError] = BadRequest) -> Any:
    """Decode exactly one strict CBOR item; raise ``error`` on anything else."""
    reader = _Reader(data, error)
    value = reader.item(0)
    if reader.pos != len(reader.data):
        raise reader.fail("trailing bytes after the message")
    return value


# -- schema helpers ----------------------------------------------------------------


def _uint(v: Any, name: str, error: type[VeilError]) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= UINT_MAX:
        raise error(f"{name} must be an unsigned integer")
    return v


def _share_set(v: Any, name: str, error: type[VeilError]) -> frozenset[int]:
    if isinstance(v, list):
        raise error(f"{name} must be a CBOR set (tag 258), not a plain array")
    if not isinstance(v, frozenset):
        raise error(f"{name} must be a CBOR set (tag 258)")
    if len(v) > MAX_SHARES:
        raise error(f"{name} has more than {MAX_SHARES} entries")
    return frozenset(_uint(x, name, error) for x in v)


def _map(v: Any, keys: frozenset[Any], what: str, error: type[VeilError], exact: bool) -> Any:
    if not isinstance(v, dict):
        raise error(f"{what} must be a CBOR map")
    missing, extra = keys - v.keys(), v.keys() - keys
    if missing or (exact and extra):
        raise error(f"{what} must have exactly the fields {sorted(map(str, keys))}")
    return v


def _limit(data: bytes | memoryview, limit: int, what: str) -> None:
    if len(data) > limit:
        raise BadRequest(f"{what} is larger than {limit} bytes")


# -- version -------------------------------------------------------------------------

_VERSION_KEYS = frozenset(
    {b"maximum-immutable-share-size", b"maximum-mutable-share-size", b"available-space"}
)


def encode_version(v: VersionInfo) -> bytes:
    return dumps(
        {
            PROTOCOL_V1: {
                b"maximum-immutable-share-size": v.maximum_immutable_share_size,
                b"maximum-mutable-share-size": v.maximum_mutable_share_size,
                b"available-space": v.available_space,
            },
            b"application-version": v.application_version,
        }
    )


def decode_version(data: bytes | memoryview) -> VersionInfo:
    """A server's version answer. Extra fields are allowed (newer servers)."""
    if len(data) > MAX_ANSWER_BODY:
        raise RemoteError("version answer is too large")
    doc = _map(loads(data, RemoteError), frozenset({PROTOCOL_V1}), "version", RemoteError, False)
    inner = _map(doc[PROTOCOL_V1], _VERSION_KEYS, "storage v1 version", RemoteError, False)
    app = doc.get(b"application-version", b"")
    if not isinstance(app, bytes):
        raise RemoteError("application-version must be a byte string")
    return VersionInfo(
        _uint(inner[b"maximum-immutable-share-size"], "maximum-immutable-share-size", RemoteError),
        _uint(inner[b"maximum-mutable-share-size"], "maximum-mutable-share-size", RemoteError),
        _uint(inner[b"available-space"], "available-space", RemoteError),
        app,
    )


# -- allocate ------------------------------------------------------------------------

_ALLOCATE_KEYS = frozenset({"share-numbers", "allocated-size"})
_ALLOCATED_KEYS = frozenset({"already-have", "allocated"})


def encode_allocate_request(share_numbers: frozenset[int], allocated_size: int) -> bytes:
    return dumps({"share-numbers": frozenset(share_numbers), "allocated-size": allocated_size})


def decode_allocate_request(data: bytes | memoryview) -> tuple[frozenset[int], int]:
    """``(share_numbers, allocated_size)``; ``BadRequest`` for anything malformed."""
    _limit(data, MAX_ALLOCATE_BODY, "an allocate request")
    doc = _map(loads(data, BadRequest), _ALLOCATE_KEYS, "allocate request", BadRequest, True)
    return (
        _share_set(doc["share-numbers"], "share-numbers", BadRequest),
        _uint(doc["allocated-size"], "allocated-size", BadRequest),
    )


def encode_allocate_result(r: AllocateResult) -> bytes:
    return dumps({"already-have": r.already_have, "allocated": r.allocated})


def decode_allocate_result(data: bytes | memoryview) -> AllocateResult:
    if len(data) > MAX_ANSWER_BODY:
        raise RemoteError("allocate answer is too large")
    doc = _map(loads(data, RemoteError), _ALLOCATED_KEYS, "allocate answer", RemoteError, False)
    return AllocateResult(
        _share_set(doc["already-have"], "already-have", RemoteError),
        _share_set(doc["allocated"], "allocated", RemoteError),
    )


# -- writes ----------------------------------------------------------------------------

_RANGE_KEYS = frozenset({"begin", "end"})
MAX_REQUIRED_RANGES = 10_000


def encode_write_result(r: WriteResult) -> bytes:
    return dumps({"required": [{"begin": x.begin, "end": x.end} for x in r.required]})


def decode_write_result(data: bytes | memoryview) -> WriteResult:
    """A PATCH answer: the ranges the server still needs (end exclusive)."""
    if len(data) > MAX_ANSWER_BODY:
        raise RemoteError("write answer is too large")
    doc = _map(
        loads(data, RemoteError), frozenset({"required"}), "write answer", RemoteError, False
    )
    required = doc["required"]
    if not isinstance(required, list) or len(required) > MAX_REQUIRED_RANGES:
        raise RemoteError("'required' in a write answer must be a list of ranges")
    out = []
    for r in required:
        r = _map(r, _RANGE_KEYS, "a required range", RemoteError, False)
        begin, end = _uint(r["begin"], "begin", RemoteError), _uint(r["end"], "end", RemoteError)
        if end <= begin:
            raise RemoteError("a required range in a write answer is empty or reversed")
        out.append(ByteRange(begin, end))
    return WriteResult(tuple(out))


# -- share lists and corruption reports --------------------------------------------------


def encode_share_list(shares: frozenset[int]) -> bytes:
    return dumps(frozenset(shares))


def decode_share_list(data: bytes | memoryview) -> frozenset[int]:
    if len(data) > MAX_ANSWER_BODY:
        raise RemoteError("share list is too large")
    return _share_set(loads(data, RemoteError), "share list", RemoteError)


def encode_corrupt_request(reason: str) -> bytes:
    return dumps({"reason": reason})


def decode_corrupt_request(data: bytes | memoryview) -> str:
    """The reason of a corruption report: text of 1 to 32765 bytes (Tahoe's CDDL)."""
    _limit(data, MAX_CORRUPT_BODY, "a corruption report")
    doc = _map(
        loads(data, BadRequest), frozenset({"reason"}), "corruption report", BadRequest, True
    )
    reason = doc["reason"]
    if not isinstance(reason, str) or not 1 <= len(reason.encode("utf-8")) <= MAX_REASON:
        raise BadRequest(f"a corruption report needs a reason of 1 to {MAX_REASON} bytes")
    return reason
