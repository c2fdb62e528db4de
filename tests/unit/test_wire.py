"""CBOR wire messages: Tahoe's exact bytes, and hostile input raising only our errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import BadRequest, RemoteError
from veil.formats import wire, wire_mutable
from veil.formats.storage_types import AllocateResult, ByteRange, VersionInfo, WriteResult

ALLOCATE_REQUEST = "a26d73686172652d6e756d62657273d90102830001026e616c6c6f63617465642d73697a651830"
ALLOCATE_ANSWER = "a26c616c72656164792d68617665d901028069616c6c6f6361746564d9010283000102"
VERSION_PREFIX = (  # first 80 bytes observed from Tahoe 1.20 (http_probe.txt)
    "a2582f687474703a2f2f616c6c6d79646174612e6f72672f7461686f652f70726f746f636f6c732f73746f72"
    "6167652f7631a3581c6d6178696d756d2d696d6d757461626c652d73686172652d73697a"
)
REQUESTS: list[Callable[[bytes], Any]] = [
    wire.decode_allocate_request,
    wire.decode_corrupt_request,
    wire_mutable.decode_rtw_request,
]
ANSWERS: list[Callable[[bytes], Any]] = [
    wire_mutable.decode_rtw_result,
    wire.decode_version,
    wire.decode_allocate_result,
    wire.decode_write_result,
    wire.decode_share_list,
]


def test_tahoe_wire_examples() -> None:
    assert wire.encode_allocate_request(frozenset({0, 1, 2}), 48).hex() == ALLOCATE_REQUEST
    assert wire.decode_allocate_request(bytes.fromhex(ALLOCATE_REQUEST)) == (
        frozenset({0, 1, 2}),
        48,
    )
    answer = AllocateResult(frozenset(), frozenset({0, 1, 2}))
    assert wire.encode_allocate_result(answer).hex() == ALLOCATE_ANSWER
    assert wire.decode_allocate_result(bytes.fromhex(ALLOCATE_ANSWER)) == answer
    assert wire.encode_share_list(frozenset({0, 1})).hex() == "d90102820001"
    assert wire.decode_share_list(bytes.fromhex("d90102820001")) == {0, 1}
    assert wire.encode_share_list(frozenset()).hex() == "d9010280"


def test_version_uses_byte_string_keys_like_tahoe() -> None:
    v = VersionInfo(80894259200, 69105 * 10**12, 80894259200, b"tahoe-lafs/1.20.0")
    raw = wire.encode_version(v)
    assert raw.hex().startswith(VERSION_PREFIX)
    assert cbor2.loads(raw) == {
        b"http://allmydata.org/tahoe/protocols/storage/v1": {
            b"maximum-immutable-share-size": 80894259200,
            b"maximum-mutable-share-size": 69105000000000000,
            b"available-space": 80894259200,
        },
        b"application-version": b"tahoe-lafs/1.20.0",
    }
    assert wire.decode_version(raw) == v


def test_patch_answers() -> None:
    w = WriteResult((ByteRange(16, 48),))
    raw = wire.encode_write_result(w)
    assert cbor2.loads(raw) == {"required": [{"begin": 16, "end": 48}]}
    assert wire.decode_write_result(raw) == w
    done = wire.encode_write_result(WriteResult())
    assert done == cbor2.dumps({"required": []}) and wire.decode_write_result(done).complete
    with pytest.raises(RemoteError):
        wire.decode_write_result(cbor2.dumps({"required": [{"begin": 5, "end": 5}]}))


def test_corruption_reports() -> None:
    assert wire.decode_corrupt_request(wire.encode_corrupt_request("bad block")) == "bad block"
    longest = "é" * (wire.MAX_REASON_SENT // 2)
    assert wire.decode_corrupt_request(wire.encode_corrupt_request(longest)) == longest
    assert len(wire.encode_corrupt_request("x" * wire.MAX_REASON_SENT)) == wire.MAX_CORRUPT_BODY
    for reason in ("", "é" * 16383, 5, b"bytes"):
        with pytest.raises(BadRequest):
            wire.decode_corrupt_request(cbor2.dumps({"reason": reason}))
    with pytest.raises(BadRequest, match="larger than"):
        wire.decode_corrupt_request(b"\x00" * 32769)
    with pytest.raises(BadRequest):
        wire.decode_corrupt_request(cbor2.dumps({"reason": "x", "extra": 1}))


def test_untagged_sets_are_refused() -> None:
    untagged = bytes.fromhex(ALLOCATE_REQUEST.replace("d9010283", "83"))
    with pytest.raises(BadRequest, match="tag 258"):
        wire.decode_allocate_request(untagged)
    with pytest.raises(RemoteError, match="tag 258"):
        wire.decode_share_list(bytes.fromhex("820001"))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("trailing bytes", bytes.fromhex(ALLOCATE_REQUEST) + b"\x00"),
        ("truncated", bytes.fromhex(ALLOCATE_REQUEST)[:-1]),
        ("deep nesting", b"\x81" * 5000 + b"\x00"),
        ("bignum", cbor2.dumps({"share-numbers": {0}, "allocated-size": 2**70})),
        ("negative", cbor2.dumps({"share-numbers": {0}, "allocated-size": -1})),
        ("float", cbor2.dumps({"share-numbers": {0}, "allocated-size": 1.5})),
        ("bool", cbor2.dumps({"share-numbers": {0}, "allocated-size": True})),
        ("other tag", cbor2.dumps({"share-numbers": cbor2.CBORTag(259, [0]), "allocated-size": 1})),
        ("too many shares", cbor2.dumps({"share-numbers": set(range(257)), "allocated-size": 1})),
        ("strings in set", cbor2.dumps({"share-numbers": {"a"}, "allocated-size": 1})),
        ("extra key", cbor2.dumps({"share-numbers": {0}, "allocated-size": 1, "x": 0})),
        ("missing key", cbor2.dumps({"share-numbers": {0}})),
        ("not a map", cbor2.dumps([1, 2])),
        ("huge length", b"\x5b" + b"\xff" * 8),
        ("huge array", b"\x9b" + b"\xff" * 8),
        ("indefinite", b"\xbf\xff"),
        ("bad utf-8", b"\xa1\x62\xff\xfe\x00"),
        ("duplicate key", b"\xa2\x61a\x00\x61a\x00"),
        ("oversized", b"\xa0" + b"\x00" * 9000),
        ("empty", b""),
    ],
)
def test_hostile_allocate_requests(name: str, data: bytes) -> None:
    with pytest.raises(BadRequest):
        wire.decode_allocate_request(data)


def test_hostile_answers() -> None:
    ok = wire.encode_version(VersionInfo(1, 2, 3, b"x"))
    for bad in (
        ok + b"\x00",
        cbor2.dumps({b"http://allmydata.org/tahoe/protocols/storage/v1": {}}),
        cbor2.dumps({"http://allmydata.org/tahoe/protocols/storage/v1": {}}),
        cbor2.dumps([]),
        b"\x00" * (wire.MAX_ANSWER_BODY + 1),
    ):
        with pytest.raises(RemoteError):
            wire.decode_version(bad)
    with pytest.raises(RemoteError):
        wire.decode_allocate_result(cbor2.dumps({"already-have": [], "allocated": set()}))


def test_codec_agrees_with_cbor2() -> None:
    value = {"a": [1, 2**40, b"xy", "é", {b"k": []}], "b": frozenset({3, 1, 2}), "c": -5}
    assert wire.dumps(value) == cbor2.dumps(value)
    assert wire.loads(cbor2.dumps({"a": [1, b"xy", "é"], "s": {3, 1}})) == {
        "a": [1, b"xy", "é"],
        "s": frozenset({1, 3}),
    }


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_our_errors(data: bytes) -> None:
    for decode in REQUESTS:
        try:
            decode(data)
        except BadRequest:
            pass
    for answer in ANSWERS:
        try:
            answer(data)
        except RemoteError:
            pass


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.binary(max_size=8)
    | st.text(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.binary(max_size=4), c, max_size=4)
        | st.frozensets(st.integers(0, 300), max_size=4)
        | st.builds(cbor2.CBORTag, st.integers(0, 2**16), c)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(_values)
def test_well_formed_but_wrong_cbor_is_refused_cleanly(value: object) -> None:
    try:
        data = cbor2.dumps(value)
    except Exception:  # cbor2 cannot encode some tag payloads; nothing to test then
        return
    for decode in REQUESTS:
        try:
            decode(data)
        except BadRequest:
            pass
    for answer in ANSWERS:
        try:
            answer(data)
        except RemoteError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    st.frozensets(st.integers(0, 255), max_size=256),
    st.integers(0, wire.UINT_MAX),
    st.lists(st.tuples(st.integers(0, 2**40), st.integers(1, 2**20)), max_size=20),
)
def test_round_trips(shares: frozenset[int], size: int, ranges: list[tuple[int, int]]) -> None:
    assert wire.decode_allocate_request(wire.encode_allocate_request(shares, size)) == (
        shares,
        size,
    )
    result = AllocateResult(shares, frozenset(range(3)))
    assert wire.decode_allocate_result(wire.encode_allocate_result(result)) == result
    assert wire.decode_share_list(wire.encode_share_list(shares)) == shares
    w = WriteResult(tuple(ByteRange(b, b + n) for b, n in ranges))
    assert wire.decode_write_result(wire.encode_write_result(w)) == w


_fields = st.dictionaries(
    st.sampled_from(["test", "write", "new-length", "offset", "size", "specimen", "data", "x"]),
    _values,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.integers(-5, 300) | st.text(max_size=3), _fields | _values, max_size=3),
    _values,
)
def test_hostile_read_test_write_bodies_are_refused_cleanly(vectors: Any, reads: Any) -> None:
    for body in ({"test-write-vectors": vectors, "read-vector": reads}, {"data": vectors}):
        try:
            data = cbor2.dumps(body)
        except Exception:
            continue
        try:
            wire_mutable.decode_rtw_request(data)
        except BadRequest:
            pass
    try:
        answer = cbor2.dumps({"success": True, "data": vectors})
    except Exception:
        return
    try:
        wire_mutable.decode_rtw_result(answer)
    except RemoteError:
        pass
