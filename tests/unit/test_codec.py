"""Erasure coding: every back-end produces zfec's exact blocks and decodes them.

The ISA-L back-end is tested whenever libisal loads; with VEIL_REQUIRE_ISAL=1 a
missing library is a failure rather than a silently smaller test matrix.
"""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.codec import BACKENDS, available_backends, make_codec
from veil.codec.isal_codec import load_error
from veil.codec.matrix import (
    decoding_matrix,
    encoding_matrix,
    identity,
    inv,
    invert,
    matmul,
    mul,
)
from veil.errors import UsageError, VeilError

AVAILABLE = available_backends()
SHAPES = [(1, 1), (1, 5), (2, 4), (3, 10), (5, 12), (10, 10), (50, 100), (255, 256)]


def _bytes(blocks: list[bytes | memoryview]) -> list[bytes]:
    return [bytes(b) for b in blocks]


def test_zfec_is_always_available_and_isal_when_required() -> None:
    assert "zfec" in AVAILABLE
    assert set(AVAILABLE) <= set(BACKENDS)
    if os.environ.get("VEIL_REQUIRE_ISAL") == "1":
        assert "isal" in AVAILABLE, f"VEIL_REQUIRE_ISAL=1 but ISA-L did not load: {load_error()}"
    assert (load_error() is None) == ("isal" in AVAILABLE)


def test_encoding_matrix_rows_match_the_vectors() -> None:
    assert [bytes(r).hex() for r in encoding_matrix(3, 10)[3:]] == [
        "0f0806",
        "2d301c",
        "99e078",
        "0be7ed",
        "893bb3",
        "46f1b6",
        "bad962",
    ]
    assert [bytes(r).hex() for r in encoding_matrix(2, 4)[2:]] == ["0302", "0504"]
    for k, n in SHAPES:
        assert [list(r) for r in encoding_matrix(k, n)[:k]] == identity(k)


def _slow_mul(a: int, b: int) -> int:
    """Schoolbook carry-less multiply, reduced by 0x11D."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
    return out


def test_field_arithmetic() -> None:
    rng = random.Random(1)
    for _ in range(3000):
        a, b = rng.randrange(256), rng.randrange(256)
        assert mul(a, b) == _slow_mul(a, b)
    assert all(mul(a, inv(a)) == 1 for a in range(1, 256))
    with pytest.raises(ZeroDivisionError):
        inv(0)
    sub = [list(encoding_matrix(5, 12)[s]) for s in (1, 6, 7, 9, 11)]
    assert matmul(sub, invert(sub)) == identity(5)
    assert invert(invert(sub)) == sub
    with pytest.raises(ValueError):
        invert([[1, 2], [1, 2]])


def test_decoding_matrix_inverts_the_chosen_rows() -> None:
    shares = (2, 5, 9)
    dec = decoding_matrix(3, 10, shares)
    assert matmul(dec, [encoding_matrix(3, 10)[s] for s in shares]) == identity(3)


def test_zfec_matches_the_spec_arithmetic() -> None:
    """zfec's check blocks equal the matrix of digest §3.3 applied byte by byte."""
    pieces = [os.urandom(64) for _ in range(3)]
    blocks = _bytes(make_codec(3, 10, backend="zfec").encode(pieces))
    for i, row in enumerate(encoding_matrix(3, 10)):
        expected = bytes(
            mul(row[0], x) ^ mul(row[1], y) ^ mul(row[2], z)
            for x, y, z in zip(*pieces, strict=True)
        )
        assert blocks[i] == expected


@pytest.mark.parametrize("k,n", SHAPES)
@pytest.mark.parametrize("size", [0, 1, 7, 4096, 10_007])
def test_backends_are_byte_identical(k: int, n: int, size: int) -> None:
    pieces = [os.urandom(size) for _ in range(k)]
    reference = _bytes(make_codec(k, n, backend="zfec").encode(pieces))
    assert len(reference) == n
    assert reference[:k] == pieces
    assert all(len(b) == size for b in reference)
    for backend in AVAILABLE:
        assert _bytes(make_codec(k, n, backend=backend).encode(pieces)) == reference


@pytest.mark.parametrize("backend", AVAILABLE)
def test_large_k_decodes_with_missing_primaries(backend: str) -> None:
    codec = make_codec(255, 256, backend=backend)
    segment = os.urandom(255 * 33)
    blocks = codec.encode_segment(segment)
    chosen = [s for s in range(256) if s != 100]  # primary 100 is lost
    random.Random(7).shuffle(chosen)
    pieces = codec.decode([blocks[s] for s in chosen], chosen)
    assert b"".join(pieces) == segment


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(0, 300), st.data())
def test_any_k_distinct_blocks_decode(k: int, size: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(k, 20))
    segment = data.draw(st.binary(min_size=size * k, max_size=size * k))
    chosen = data.draw(st.permutations(range(n)))[:k]
    encoded = {b: make_codec(k, n, backend=b).encode_segment(segment) for b in AVAILABLE}
    for backend in AVAILABLE:
        codec = make_codec(k, n, backend=backend)
        for blocks in encoded.values():  # decode what any back-end encoded
            pieces = codec.decode([blocks[i] for i in chosen], chosen)
            assert all(isinstance(p, bytes) for p in pieces)
            assert b"".join(pieces) == segment


@pytest.mark.parametrize("backend", AVAILABLE)
def test_decode_accepts_any_buffer_and_order(backend: str) -> None:
    codec = make_codec(3, 10, backend=backend)
    segment = os.urandom(3 * 1000)
    blocks = _bytes(codec.encode_segment(segment))
    views = [memoryview(bytearray(b)) for b in blocks]
    for chosen in ([2, 0, 1], [9, 1, 4], [7, 8, 9], [0, 1, 2]):
        for given_blocks in ([blocks[s] for s in chosen], [views[s] for s in chosen]):
            assert b"".join(codec.decode(given_blocks, chosen)) == segment


@pytest.mark.parametrize("backend", AVAILABLE)
def test_encode_segment_splits_without_copying(backend: str) -> None:
    codec = make_codec(5, 12, backend=backend)
    segment = os.urandom(5 * 777)
    blocks = codec.encode_segment(segment)
    pieces = [segment[i * 777 : (i + 1) * 777] for i in range(5)]
    assert _bytes(blocks) == _bytes(codec.encode(pieces))
    for block in blocks[:5]:
        assert isinstance(block, memoryview) and block.obj is segment
    assert codec.encode(pieces)[:5] == pieces
    assert all(a is b for a, b in zip(codec.encode(pieces), pieces, strict=False))


@pytest.mark.parametrize("backend", AVAILABLE)
def test_codecs_are_cached_and_thread_safe(backend: str) -> None:
    codec = make_codec(3, 10, backend=backend)
    assert make_codec(3, 10, backend=backend) is codec
    assert codec.name == backend and (codec.k, codec.n) == (3, 10)
    segments = [os.urandom(3 * 50_000) for _ in range(8)]
    expected = [_bytes(codec.encode_segment(s)) for s in segments]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda s: _bytes(codec.encode_segment(s)), segments))
    assert got == expected


def test_auto_picks_the_fastest_available() -> None:
    assert make_codec(2, 4).name == AVAILABLE[0]
    assert make_codec(2, 4, backend="auto") is make_codec(2, 4, backend=AVAILABLE[0])


@pytest.mark.parametrize("k,n", [(0, 3), (4, 3), (3, 257), (-1, 2)])
def test_impossible_parameters_are_usage_errors(k: int, n: int) -> None:
    with pytest.raises(UsageError, match="1 <= k <= n <= 256"):
        make_codec(k, n)


def test_unknown_backend_and_non_integers_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown erasure coding back-end 'nope'"):
        make_codec(3, 10, backend="nope")
    with pytest.raises(UsageError, match="whole numbers"):
        make_codec("3", 10)  # type: ignore[arg-type]
    assert issubclass(UsageError, VeilError)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_bad_inputs_are_usage_errors(backend: str) -> None:
    codec = make_codec(3, 10, backend=backend)
    blocks = codec.encode_segment(b"abcdef")
    with pytest.raises(UsageError, match="distinct"):
        codec.decode(blocks[:3], [0, 0, 1])
    with pytest.raises(UsageError, match="exactly 3"):
        codec.decode(blocks[:2], [0, 1])
    with pytest.raises(UsageError, match=r"not in 0\.\.9"):
        codec.decode(blocks[:3], [0, 1, 10])
    with pytest.raises(UsageError, match="3 blocks"):
        codec.decode(blocks[:2], [0, 1, 2])
    with pytest.raises(UsageError, match="same length"):
        codec.decode([b"ab", b"cd", b"e"], [0, 4, 5])
    with pytest.raises(UsageError, match="3 equal pieces"):
        codec.encode_segment(b"abcd")
    with pytest.raises(UsageError, match="needs 3 pieces"):
        codec.encode([b"ab", b"cd"])
    with pytest.raises(UsageError, match="contiguous"):
        codec.encode([memoryview(b"abcdef")[::2]] * 3)
