"""CBOR wire messages: Tahoe's exact bytes, and hostile input raising only our errors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import BadRequest, RemoteError
from veil.formats import wire
from veil.formats.storage_types import AllocateResult, ByteRange, VersionInfo, WriteResult


def test_tahoe_wire_examples() -> None:
    assert wire.encode_allocate_request(frozenset({0, 1, 2}), 48).hex() == (
        "a26d73686172652d6e756d62657273d90102830001026e616c6c6f63617465642d73697a651830"
    )
    assert wire.encode_allocate_result(AllocateResult(frozenset(), frozenset({0, 1, 2}))).hex() == (
        "a26c616c72656164792d68617665d901028069616c6c6f6361746564d9010283000102"
    )
    assert wire.encode_share_list(frozenset({0, 1})).hex() == "d90102820001"
    v = VersionInfo(10, 20, 30, b"veil")
    assert wire.decode_version(wire.encode_version(v)) == v
    w = WriteResult((ByteRange(16, 48),))
    assert wire.decode_write_result(wire.encode_write_result(w)) == w


def test_untagged_sets_are_refused() -> None:
    untagged = bytes.fromhex(
        "a26d73686172652d6e756d62657273830001026e616c6c6f63617465642d73697a651830"
    )
    try:
        wire.decode_allocate_request(untagged)
    except BadRequest as exc:
        assert "tag 258" in str(exc)
    else:
        raise AssertionError("an untagged array was accepted as a set")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_hostile_requests_raise_only_bad_request(data: bytes) -> None:
    for decode in (wire.decode_allocate_request, wire.decode_corrupt_request):
        try:
            decode(data)
        except BadRequest:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_hostile_answers_raise_only_remote_error(data: bytes) -> None:
    for decode in (
        wire.decode_version,
        wire.decode_allocate_result,
        wire.decode_write_result,
        wire.decode_share_list,
    ):
        try:
            decode(data)
        except RemoteError:
            pass


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.binary() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_well_formed_but_wrong_cbor_is_refused_cleanly(value: object) -> None:
    data = wire.dumps(value)
    for decode in (wire.decode_allocate_request, wire.decode_corrupt_request):
        try:
            decode(data)
        except BadRequest:
            pass
    for answer in (
        wire.decode_version,
        wire.decode_allocate_result,
        wire.decode_write_result,
        wire.decode_share_list,
    ):
        try:
            answer(data)
        except RemoteError:
            pass
