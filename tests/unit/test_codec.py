"""Erasure coding: ISA-L and zfec back-ends agree byte for byte with zfec."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.codec import available_backends, make_codec
from veil.codec.matrix import encoding_matrix
from veil.errors import UsageError

BACKENDS = available_backends()


def test_zfec_is_always_available_and_isal_when_required() -> None:
    assert "zfec" in BACKENDS
    if os.environ.get("VEIL_REQUIRE_ISAL") == "1":
        assert "isal" in BACKENDS


def test_encoding_matrix_rows_match_the_vectors() -> None:
    rows = [bytes(r).hex() for r in encoding_matrix(3, 10)[3:]]
    assert rows == ["0f0806", "2d301c", "99e078", "0be7ed", "893bb3", "46f1b6", "bad962"]
    assert [bytes(r).hex() for r in encoding_matrix(2, 4)[2:]] == ["0302", "0504"]
    assert [list(r) for r in encoding_matrix(3, 10)[:3]] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize("k,n", [(1, 1), (1, 5), (2, 4), (3, 10), (5, 12), (10, 10), (50, 100)])
@pytest.mark.parametrize("size", [0, 1, 7, 4096])
def test_backends_are_identical(k: int, n: int, size: int) -> None:
    pieces = [os.urandom(size) for _ in range(k)]
    reference = [bytes(b) for b in make_codec(k, n, backend="zfec").encode(pieces)]
    assert reference[:k] == pieces
    for backend in BACKENDS:
        assert [bytes(b) for b in make_codec(k, n, backend=backend).encode(pieces)] == reference


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.integers(0, 300), st.data())
def test_any_k_blocks_decode(k: int, size: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(k, 16))
    segment = data.draw(st.binary(min_size=size * k, max_size=size * k))
    chosen = data.draw(st.permutations(range(n))).__getitem__(slice(0, k))
    for backend in BACKENDS:
        codec = make_codec(k, n, backend=backend)
        blocks = codec.encode_segment(segment)
        pieces = codec.decode([blocks[i] for i in chosen], chosen)
        assert b"".join(pieces) == segment


def test_bad_parameters_are_clear_errors() -> None:
    for k, n in ((0, 3), (4, 3), (3, 257)):
        with pytest.raises(UsageError):
            make_codec(k, n)
    with pytest.raises(UsageError):
        make_codec(3, 10, backend="nope")
    codec = make_codec(3, 10)
    blocks = codec.encode_segment(b"abcdef")
    with pytest.raises(UsageError):
        codec.decode(blocks[:3], [0, 0, 1])
    with pytest.raises(UsageError):
        codec.decode(blocks[:2], [0, 1])
