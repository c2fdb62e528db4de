"""Reproduce every CHK vector made by the real Tahoe-LAFS 1.20 (test-vectors.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest
import zfec

from veil.formats import base32
from veil.formats.caps import CHKReadCap, parse_cap
from veil.formats.encoder import ImmutableEncoder
from veil.formats.hashes import convergence_hasher, storage_index_from_readkey
from veil.formats.params import FileGeometry

VECTORS = Path(__file__).parent.parent / "data" / "vectors"
Z32 = b"\x00" * 32
S32 = b"convergence secret xxxxxxxxxxxxx"
P56a = b"a" * 56
P1000a = b"a" * 1000
P10240 = bytes(range(256)) * 40
P100000ff = b"\xff" * 100000

CASES = {
    "A": (P56a, Z32, 3, 10, 1048576, 1),
    "B": (P1000a, Z32, 3, 10, 1048576, 1),
    "C": (P10240, Z32, 3, 10, 1048576, 1),
    "D": (P10240, Z32, 3, 10, 4096, 1),
    "E": (P1000a, S32, 2, 4, 131072, 1),
    "F": (P1000a, Z32, 1, 1, 1048576, 1),
    "G": (P10240, Z32, 3, 10, 131072, 1),
    "H": (P100000ff, Z32, 5, 12, 4096, 1),
    "Bv2": (P1000a, Z32, 3, 10, 1048576, 2),
}


class ZfecCoder:
    def __init__(self, k: int, n: int) -> None:
        self.k, self.n = k, n
        self._enc = zfec.Encoder(k, n)

    def encode_segment(self, segment: bytes | memoryview) -> Sequence[bytes]:
        size = len(segment) // self.k
        pieces = [bytes(segment[i * size : (i + 1) * size]) for i in range(self.k)]
        return list(self._enc.encode(pieces))


def encode_case(name: str) -> tuple[CHKReadCap, dict[int, bytes]]:
    data, secret, k, n, maxseg, version = CASES[name]
    return encode_data(data, secret, k, n, maxseg, version, ZfecCoder(k, n))


def encode_data(
    data: bytes, secret: bytes, k: int, n: int, maxseg: int, version: int, coder: ZfecCoder
) -> tuple[CHKReadCap, dict[int, bytes]]:
    """Every complete share veil's encoder writes for ``data`` (layout bytes)."""
    geometry = FileGeometry.for_upload(len(data), k, n, maxseg)
    hasher = convergence_hasher(k, n, geometry.segment_size, secret)
    hasher.update(data)
    enc = ImmutableEncoder(hasher.digest(), geometry, coder, min_version=version)
    shares: dict[int, bytearray] = {i: bytearray(enc.header()) for i in range(n)}
    for segnum in range(geometry.num_segments):
        start = segnum * geometry.segment_size
        seg = enc.encode_segment(data[start : start + geometry.segment_length(segnum)])
        for shnum, block in enumerate(seg.blocks):
            shares[shnum] += block
    done = enc.finish()
    out = {}
    for shnum, buf in shares.items():
        buf += done.trailers[shnum]
        assert len(buf) == enc.allocated_size
        out[shnum] = bytes(buf)
    return done.cap, out


@pytest.mark.parametrize("name", sorted(CASES))
def test_shares_are_byte_identical_to_tahoe(name: str) -> None:
    _, shares = encode_case(name)
    files = sorted(VECTORS.glob(f"{name}.share*"))
    assert files, f"no vector files for {name}"
    for path in files:
        shnum = int(path.name.split("share")[1])
        assert shares[shnum] == path.read_bytes(), f"{name} share {shnum} differs"


CAPS = {
    "A": "URI:CHK:3ider2oyrjylu3zxnxcaf3ufny:cz26at4njp7fajpj72krpfml4hewlqyeucaxp32t4c4eyjdfbp3q:3:10:56",
    "B": "URI:CHK:57celivnweykdlup7qwky3hwvy:zkvd2ygnryccymc2mbhppnq3bmlpldj3ibraz37eopmays6elmua:3:10:1000",
    "C": "URI:CHK:3dtqstchqwlm7ppl3kqv7yaib4:scfbgrmd3y6jdzecd2zp43j7hxpqpnidilrtltx4f5wjbflytcyq:3:10:10240",
    "D": "URI:CHK:tfh4fwlzm666d2paqos3dir4c4:45eveoekq55kt2dtqt5zmtorjqnsodc25klvvo3mfr3vyksfu5na:3:10:10240",
    "E": "URI:CHK:ljto27ik5dvrelctcig5djrymy:dhmls3mfrpbziruhpe3o6cwsovhw62dlf2okcucc56pvu5ptwhcq:2:4:1000",
    "F": "URI:CHK:jro7lmkc673aawmwpjfvm37tbi:rxaem5e76pvnkoxxg3id46ezdiclq3xnos72t3v6qm5brpzqbwqa:1:1:1000",
    "G": "URI:CHK:3dtqstchqwlm7ppl3kqv7yaib4:scfbgrmd3y6jdzecd2zp43j7hxpqpnidilrtltx4f5wjbflytcyq:3:10:10240",
    "H": "URI:CHK:blz75q2v3deqsuoocb7jvjgwgq:buf4kifc5jy2ab5ujxbzfd5jfmsw774mfwtcmfptsf3nll6enc6a:5:12:100000",
    "Bv2": "URI:CHK:57celivnweykdlup7qwky3hwvy:zkvd2ygnryccymc2mbhppnq3bmlpldj3ibraz37eopmays6elmua:3:10:1000",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_caps_match_tahoe(name: str) -> None:
    cap, _ = encode_case(name)
    assert cap.to_string() == CAPS[name]
    assert parse_cap(CAPS[name]) == cap


def test_storage_index_and_verify_cap_of_case_a() -> None:
    cap = parse_cap(CAPS["A"])
    assert isinstance(cap, CHKReadCap)
    assert base32.b2a(storage_index_from_readkey(cap.readkey)) == "ipyccq7zkvlnf22ghlklp2klbq"
    assert cap.verify_cap().to_string() == (
        "URI:CHK-Verifier:ipyccq7zkvlnf22ghlklp2klbq:"
        "cz26at4njp7fajpj72krpfml4hewlqyeucaxp32t4c4eyjdfbp3q:3:10:56"
    )


def test_summary_hashes_cover_every_vector_file() -> None:
    summary = (VECTORS / "summary.txt").read_text()
    for name in CASES:
        _, shares = encode_case(name)
        for shnum, data in shares.items():
            digest = hashlib.sha256(data).hexdigest()
            if (VECTORS / f"{name}.share{shnum}").exists():
                assert digest in summary
