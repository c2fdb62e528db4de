"""Encode → any k shares → validate → decode, with no I/O (property tests)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.codec import make_codec
from veil.errors import IntegrityError
from veil.formats.caps import CHKReadCap
from veil.formats.decoder import SegmentDecoder, ShareValidator, trailer_range
from veil.formats.encoder import ImmutableEncoder
from veil.formats.params import FileGeometry


def encode(data: bytes, k: int, n: int, maxseg: int) -> tuple[CHKReadCap, dict[int, bytes]]:
    g = FileGeometry.for_upload(len(data), k, n, maxseg)
    enc = ImmutableEncoder(os.urandom(16), g, make_codec(k, n))
    shares = {i: bytearray(enc.header()) for i in range(n)}
    for s in range(g.num_segments):
        seg = enc.encode_segment(
            data[s * g.segment_size : s * g.segment_size + g.segment_length(s)]
        )
        for i, block in enumerate(seg.blocks):
            shares[i] += block
    done = enc.finish()
    return done.cap, {i: bytes(b + done.trailers[i]) for i, b in shares.items()}


def decode(cap: CHKReadCap, shares: dict[int, bytes]) -> bytes:
    validators = []
    for shnum, data in shares.items():
        v = ShareValidator(cap, shnum, data[:0x44])
        tr = trailer_range(v.layout)
        v.validate_trailer(data[tr.offset : tr.offset + tr.length])
        validators.append((v, data))
    g = validators[0][0].geometry
    decoder = SegmentDecoder(cap.readkey, validators[0][0], make_codec(g.needed, g.total))
    out = []
    for s in range(g.num_segments):
        blocks = []
        for v, data in validators:
            off, length = v.block_offset(s)
            block = data[off : off + length]
            v.check_block(s, block)
            blocks.append(block)
        crypttext = decoder.crypttext(s, blocks, [v.shnum for v, _ in validators])
        out.append(decoder.plaintext(s, crypttext))
    return b"".join(out)


@settings(max_examples=60, deadline=None)
@given(st.integers(56, 40_000), st.integers(1, 8), st.data())
def test_any_k_shares_rebuild_the_file(size: int, k: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(k, 12))
    maxseg = data.draw(st.sampled_from([k * 7, 1000, 4096, 1 << 20]))
    plaintext = (
        data.draw(st.binary(min_size=size, max_size=size)) if size < 2000 else os.urandom(size)
    )
    cap, shares = encode(plaintext, k, n, maxseg)
    chosen = data.draw(
        st.lists(st.sampled_from(sorted(shares)), min_size=k, max_size=k, unique=True)
    )
    assert decode(cap, {i: shares[i] for i in chosen}) == plaintext


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_a_flipped_bit_is_detected_or_harmless(data: st.DataObject) -> None:
    # A flip anywhere either raises IntegrityError or changes nothing the reader
    # uses; it never yields different plaintext. Flips outside the two ignored
    # header fields and the unused plaintext tree must always be detected.
    plaintext = os.urandom(data.draw(st.integers(56, 9000)))
    cap, shares = encode(plaintext, 3, 5, 2048)
    victim = data.draw(st.sampled_from(sorted(shares)))
    share = bytearray(shares[victim])
    pos = data.draw(st.integers(0, len(share) - 1))
    share[pos] ^= 1 << data.draw(st.integers(0, 7))
    others = [i for i in shares if i != victim][:2]
    chosen = {victim: bytes(share), **{i: shares[i] for i in others}}
    v = ShareValidator(cap, victim, shares[victim][:0x44])
    # ignored by readers (Tahoe's too): the legacy block/data size fields, the
    # plaintext hash tree, and the offset that points at that tree
    plaintext_offset_field = range(0x10, 0x14)  # v1 header: 4-byte offsets from 0x0c
    ignored = (
        4 <= pos < 12
        or pos in plaintext_offset_field
        or v.layout.plaintext_tree <= pos < v.layout.crypttext_tree
    )
    try:
        result = decode(cap, chosen)
    except IntegrityError:
        return
    assert ignored, f"flip at {pos} went unnoticed"
    assert result == plaintext


def test_wrong_cap_is_refused() -> None:
    _, shares = encode(b"x" * 5000, 3, 10, 1 << 20)
    other, _ = encode(b"y" * 5000, 3, 10, 1 << 20)
    with pytest.raises(IntegrityError):
        decode(other, {i: shares[i] for i in range(3)})
