"""CBOR messages of the HTTP storage protocol's mutable routes (digest §1.17).

    read-test-write request:
      {"test-write-vectors": {shnum: {"test": [{"offset", "size", "specimen"}, …],
                                      "write": [{"offset", "data"}, …],
                                      "new-length": uint or null}},
       "read-vector": [{"offset", "size"}, …]}
    answer: {"success": bool, "data": {shnum: [bytes, …]}}

Decoders are strict (``BadRequest`` for a server, ``RemoteError`` for a
client) and bound every count, so a hostile peer cannot make either side
allocate without limit.
"""

from __future__ import annotations

from typing import Any

from veil.errors import BadRequest, RemoteError, VeilError
from veil.formats.storage_types import TestWrite, TestWriteResult
from veil.formats.wire import MAX_SHARES, _map, _uint, dumps, loads

MAX_VECTOR = 30
MAX_WRITES = 1000
MAX_RTW_BODY = 64 * 1024 * 1024  # Tahoe's client writes an SDMF share in one request

_TW_KEYS = frozenset({"test", "write"})
_TEST_KEYS = frozenset({"offset", "size", "specimen"})
_WRITE_KEYS = frozenset({"offset", "data"})
_READ_KEYS = frozenset({"offset", "size"})
_RTW_KEYS = frozenset({"test-write-vectors", "read-vector"})
_ANSWER_KEYS = frozenset({"success", "data"})


def encode_rtw_request(vectors: dict[int, TestWrite], read_vector: list[tuple[int, int]]) -> bytes:
    return dumps(
        {
            "test-write-vectors": {
                sh: {
                    "test": [{"offset": o, "size": n, "specimen": s} for o, n, s in v.tests],
                    "write": [{"offset": o, "data": d} for o, d in v.writes],
                    "new-length": v.new_length,
                }
                for sh, v in vectors.items()
            },
            "read-vector": [{"offset": o, "size": n} for o, n in read_vector],
        }
    )


def _list(v: Any, name: str, limit: int, error: type[VeilError]) -> list[Any]:
    if not isinstance(v, list) or len(v) > limit:
        raise error(f"{name} must be an array of at most {limit} elements")
    return v


def _bytes(v: Any, name: str, error: type[VeilError]) -> bytes:
    if not isinstance(v, bytes):
        raise error(f"{name} must be a byte string")
    return v


def decode_rtw_request(
    data: bytes | memoryview,
) -> tuple[dict[int, TestWrite], list[tuple[int, int]]]:
    e = BadRequest
    body = _map(loads(data), _RTW_KEYS, "read-test-write request", e, True)
    tw = body["test-write-vectors"]
    if not isinstance(tw, dict) or len(tw) > MAX_SHARES:
        raise e("test-write-vectors must be a map of at most 256 shares")
    vectors: dict[int, TestWrite] = {}
    for sh, raw in tw.items():
        shnum = _uint(sh, "share number", e)
        if shnum >= MAX_SHARES:
            raise e("share numbers are below 256")
        fields = _map(raw, _TW_KEYS, "test-write vector", e, False)
        if set(fields) - _TW_KEYS - {"new-length"}:
            raise e("a test-write vector has test, write and new-length only")
        tests = tuple(
            (
                _uint(t["offset"], "offset", e),
                _uint(t["size"], "size", e),
                _bytes(t["specimen"], "specimen", e),
            )
            for t in (
                _map(x, _TEST_KEYS, "test", e, True)
                for x in _list(fields["test"], "test", MAX_VECTOR, e)
            )
        )
        writes = tuple(
            (_uint(w["offset"], "offset", e), _bytes(w["data"], "data", e))
            for w in (
                _map(x, _WRITE_KEYS, "write", e, True)
                for x in _list(fields["write"], "write", MAX_WRITES, e)
            )
        )
        new_length = fields.get("new-length")
        if new_length is not None:
            new_length = _uint(new_length, "new-length", e)
        vectors[shnum] = TestWrite(tests, writes, new_length)
    reads = [
        (_uint(r["offset"], "offset", e), _uint(r["size"], "size", e))
        for r in (
            _map(x, _READ_KEYS, "read vector", e, True)
            for x in _list(body["read-vector"], "read-vector", MAX_VECTOR, e)
        )
    ]
    return vectors, reads


def encode_rtw_result(result: TestWriteResult) -> bytes:
    return dumps({"success": result.success, "data": result.data})


def decode_rtw_result(data: bytes | memoryview) -> TestWriteResult:
    e = RemoteError
    body = _map(loads(data, e), _ANSWER_KEYS, "read-test-write answer", e, True)
    if not isinstance(body["success"], bool) or not isinstance(body["data"], dict):
        raise e("read-test-write answer has the wrong types")
    out = {}
    for sh, items in body["data"].items():
        out[_uint(sh, "share number", e)] = [
            _bytes(x, "data", e) for x in _list(items, "data", MAX_VECTOR, e)
        ]
    return TestWriteResult(body["success"], out)
