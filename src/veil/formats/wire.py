"""CBOR messages of Tahoe's HTTP storage protocol, validated (digest §5.4, §5.5).

Sets travel as CBOR tag 258 around an array; an untagged array where a set is
expected is refused, as Tahoe does. The version message uses byte-string keys.
Every decoder raises ``BadRequest`` (for requests we receive) or
``RemoteError`` (for answers a server sent) on anything else, never another
exception.
"""

from __future__ import annotations

from typing import Any

import cbor2

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
MAX_SHARES = 256
_UINT_MAX = 2**64 - 1


def _loads(data: bytes, error: type[VeilError]) -> Any:
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2 raises many types on hostile input
        raise error(f"malformed CBOR body: {type(exc).__name__}") from None


def dumps(value: Any) -> bytes:
    return cbor2.dumps(value)


def _uint(v: Any, name: str, error: type[VeilError]) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _UINT_MAX:
        raise error(f"{name} must be an unsigned integer")
    return v


def _share_set(v: Any, name: str, error: type[VeilError]) -> frozenset[int]:
    if not isinstance(v, set | frozenset):
        raise error(f"{name} must be a CBOR set (tag 258)")
    if len(v) > MAX_SHARES:
        raise error(f"{name} has too many entries")
    return frozenset(_uint(x, name, error) for x in v)


# -- version ---------------------------------------------------------------------


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


def decode_version(data: bytes) -> VersionInfo:
    doc = _loads(data, RemoteError)
    inner = doc.get(PROTOCOL_V1) if isinstance(doc, dict) else None
    if not isinstance(inner, dict):
        raise RemoteError("version answer lacks the storage v1 protocol")
    maximum = _uint(inner.get(b"maximum-immutable-share-size"), "maximum size", RemoteError)
    mutable = inner.get(b"maximum-mutable-share-size", 0)
    space = inner.get(b"available-space", maximum)
    app = doc.get(b"application-version", b"")
    return VersionInfo(
        maximum,
        _uint(mutable, "mutable size", RemoteError),
        _uint(space, "available space", RemoteError),
        app if isinstance(app, bytes) else str(app).encode(),
    )


# -- allocate --------------------------------------------------------------------


def encode_allocate_request(share_numbers: frozenset[int], allocated_size: int) -> bytes:
    return dumps({"share-numbers": set(share_numbers), "allocated-size": allocated_size})


def decode_allocate_request(data: bytes) -> tuple[frozenset[int], int]:
    if len(data) > MAX_ALLOCATE_BODY:
        raise BadRequest("allocate body too large")
    doc = _loads(data, BadRequest)
    if not isinstance(doc, dict) or set(doc) != {"share-numbers", "allocated-size"}:
        raise BadRequest("allocate body must have share-numbers and allocated-size")
    return (
        _share_set(doc["share-numbers"], "share-numbers", BadRequest),
        _uint(doc["allocated-size"], "allocated-size", BadRequest),
    )


def encode_allocate_result(r: AllocateResult) -> bytes:
    return dumps({"already-have": set(r.already_have), "allocated": set(r.allocated)})


def decode_allocate_result(data: bytes) -> AllocateResult:
    doc = _loads(data, RemoteError)
    if not isinstance(doc, dict):
        raise RemoteError("allocate answer is not a map")
    return AllocateResult(
        _share_set(doc.get("already-have"), "already-have", RemoteError),
        _share_set(doc.get("allocated"), "allocated", RemoteError),
    )


# -- writes, lists, corruption -----------------------------------------------------


def encode_write_result(r: WriteResult) -> bytes:
    return dumps({"required": [{"begin": x.begin, "end": x.end} for x in r.required]})


def decode_write_result(data: bytes) -> WriteResult:
    doc = _loads(data, RemoteError)
    req = doc.get("required") if isinstance(doc, dict) else None
    if not isinstance(req, list) or len(req) > 10_000:
        raise RemoteError("write answer lacks 'required'")
    out = []
    for r in req:
        if not isinstance(r, dict):
            raise RemoteError("bad range in write answer")
        out.append(
            ByteRange(
                _uint(r.get("begin"), "begin", RemoteError), _uint(r.get("end"), "end", RemoteError)
            )
        )
    return WriteResult(tuple(out))


def encode_share_list(shares: frozenset[int]) -> bytes:
    return dumps(set(shares))


def decode_share_list(data: bytes) -> frozenset[int]:
    return _share_set(_loads(data, RemoteError), "share list", RemoteError)


def encode_corrupt_request(reason: str) -> bytes:
    return dumps({"reason": reason})


def decode_corrupt_request(data: bytes) -> str:
    if len(data) > MAX_CORRUPT_BODY:
        raise BadRequest("corruption report too large")
    doc = _loads(data, BadRequest)
    reason = doc.get("reason") if isinstance(doc, dict) else None
    if not isinstance(reason, str) or not 1 <= len(reason) <= 32765 or len(doc) != 1:
        raise BadRequest("a corruption report needs a reason of 1 to 32765 characters")
    return reason
