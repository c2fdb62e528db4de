"""Pure formats: base32, netstrings, hashes, caps, Merkle trees, UEB, layouts."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import CapabilityError, FormatError, IntegrityError
from veil.formats import base32, merkle, ueb
from veil.formats.caps import (
    CHKReadCap,
    CHKVerifyCap,
    LiteralCap,
    UnknownCap,
    parse_cap,
    parse_read_cap,
)
from veil.formats.hashes import (
    lease_secrets_for,
    permute_server_hash,
    tagged_hash,
    tagged_pair_hash,
)
from veil.formats.netstring import netstring, split_netstrings
from veil.formats.params import FileGeometry
from veil.formats.share_layout import layout_for, parse_header

CAP_A = (
    "URI:CHK:3ider2oyrjylu3zxnxcaf3ufny:"
    "cz26at4njp7fajpj72krpfml4hewlqyeucaxp32t4c4eyjdfbp3q:3:10:56"
)


@given(st.binary(max_size=200))
def test_base32_round_trip_is_canonical(data: bytes) -> None:
    text = base32.b2a(data)
    assert base32.is_canonical(text)
    assert base32.a2b(text) == data
    assert len(text) == base32.encoded_length(len(data))


@given(st.binary(max_size=80))
def test_base32_decodes_as_the_standard_library_does(data: bytes) -> None:
    text = base64.b32encode(data).decode().rstrip("=").lower()
    assert base32.a2b(text) == base64.b32decode(text.upper() + "=" * (-len(text) % 8)) == data


def test_base32_rejects_non_canonical_and_foreign_text() -> None:
    assert base32.b2a(b"\x00" * 16) == "a" * 26
    for bad in ("a" * 25 + "z", "ABC", "a1", "a" * 3, "a=="):
        with pytest.raises(FormatError):
            base32.a2b(bad)


def test_primitive_hash_vectors() -> None:
    assert tagged_hash(b"tag", b"value").hex() == (
        "64b0cafcfe5f99653ae63b644191c890600965073ef48bf9b24f9e623c940229"
    )
    assert tagged_pair_hash(b"tag", b"a", b"b").hex() == (
        "e003cf467d5cbcdf2eedb7369cd332e96f4405959a932f35200b862b2dc0a593"
    )
    assert base32.b2a(merkle.empty_leaf_hash(1)) == (
        "hxi4zbcf3u2prmyetri55kz5atavwx6szg4e5xnlgrmwnpmp3xsa"
    )


def test_lease_secret_vectors() -> None:
    si = base32.a2b("ipyccq7zkvlnf22ghlklp2klbq")
    renew, cancel = lease_secrets_for(b"\x01" * 32, si, b"\x02" * 20)
    assert renew.hex() == "c0c7b53a6e20e54768f7cc1e5188fd5755c372d141c0661201e0a6eddd87fe8b"
    assert cancel.hex() == "14ee7fc0dd7ffd6aa3e7c71ee87183c36fea56b3d55b2142e61539dd368d286a"
    upstream = lease_secrets_for(
        base32.a2b("boity2cdh7jvl3ltaeebuiobbspjmbuopnwbde2yeh4k6x7jioga"),
        base32.a2b("vrttmwlicrzbt7gh5qsooogr7u"),
        base32.a2b("v67jiisoty6ooyxlql5fuucitqiok2ic"),
    )
    assert base32.b2a(upstream[0]) == "osd6wmc5vz4g3ukg64sitmzlfiaaordutrez7oxdp5kkze7zp5zq"


def test_permutation_vectors() -> None:
    si = bytes.fromhex("43f02143f95556d2eb463ad4b7e94b0c")
    assert permute_server_hash(si, b"\x00" * 20).hex() == (
        "3955993b33c4646a1c34676c845c1a01f8cd886f"
    )
    seed = b"mjmahgcrruynko7nqlha2chla4pxosdt5w32f7qd7knd6wmrssmq"
    assert permute_server_hash(si, seed).hex() == "917f8e681618a5138d758054f122f5b0be395f35"


@given(st.lists(st.binary(max_size=40), max_size=5))
def test_netstrings_round_trip(items: list[bytes]) -> None:
    assert split_netstrings(b"".join(netstring(i) for i in items), len(items)) == items


def test_caps_parse_and_render() -> None:
    cap = parse_cap(CAP_A)
    assert isinstance(cap, CHKReadCap)
    assert cap.to_string() == CAP_A
    assert "3ider2" not in repr(cap)  # the read key stays out of logs
    vcap = parse_cap(cap.verify_cap().to_string() + "junk")  # Tahoe's unanchored regex
    assert isinstance(vcap, CHKVerifyCap)
    assert parse_cap("URI:LIT:nbswy3dp") == LiteralCap(b"hello")
    assert parse_cap("URI:LIT:") == LiteralCap(b"")
    assert isinstance(parse_cap("URI:SSK:abc:def"), UnknownCap)
    non_canonical = CAP_A.replace("3ider2oyrjylu3zxnxcaf3ufny", "3ider2oyrjylu3zxnxcaf3ufnz")
    assert isinstance(parse_cap(non_canonical), UnknownCap)


@pytest.mark.parametrize(
    "bad",
    [
        CAP_A.replace(":3:10:", ":0:10:"),
        CAP_A.replace(":3:10:", ":11:10:"),
        CAP_A[:-3],
        "URI:CHK:" + "z" * 26 + CAP_A[34:],
        "URI:LIT:ABC",
        "URI:CHK-Verifier:nope",
    ],
)
def test_malformed_caps_are_unknown_but_refused_as_read_caps(bad: str) -> None:
    assert parse_cap(bad) == UnknownCap(bad)
    with pytest.raises(CapabilityError):
        parse_read_cap(bad)


def test_read_cap_refuses_verify_caps_and_unknown() -> None:
    cap = parse_cap(CAP_A)
    assert isinstance(cap, CHKReadCap)
    with pytest.raises(CapabilityError, match="verify cap"):
        parse_read_cap(cap.verify_cap().to_string())
    with pytest.raises(CapabilityError):
        parse_read_cap("hello")


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_merkle_chains_verify_every_leaf(leaves: list[bytes], data: st.DataObject) -> None:
    nodes = merkle.build_tree(leaves)
    assert len(nodes) == merkle.tree_node_count(len(leaves))
    merkle.check_tree(nodes, nodes[0], "t")
    leaf = data.draw(st.integers(0, len(leaves) - 1))
    chain = {i: nodes[i] for i in merkle.needed_hashes(leaf, len(leaves), include_leaf=True)}
    assert merkle.check_chain(nodes[0], leaf, len(leaves), chain, "t") == leaves[leaf]
    if len(leaves) > 1:
        victim = data.draw(st.sampled_from(sorted(chain)))
        chain[victim] = bytes(32)
        with pytest.raises(IntegrityError):
            merkle.check_chain(nodes[0], leaf, len(leaves), chain, "t")


def test_ueb_parse_rejects_mismatches() -> None:
    g = FileGeometry.for_upload(1000, 3, 10, 1 << 20)
    block = ueb.URIExtension(g, b"a" * 32, b"b" * 32, b"c" * 32)
    data = block.serialize()
    parsed, _ = ueb.parse_and_validate(
        data, expected_hash=block.hash(), size=1000, needed=3, total=10
    )
    assert parsed == block
    with pytest.raises(IntegrityError):
        ueb.parse_and_validate(data, expected_hash=bytes(32), size=1000, needed=3, total=10)
    with pytest.raises(IntegrityError):
        ueb.parse_and_validate(data, expected_hash=block.hash(), size=999, needed=3, total=10)
    assert ueb.unpack(data)["codec_name"] == b"crs"
    for junk in (b"x", b"size:", b"size:9:1,", b"s!ze:1:1,"):
        with pytest.raises(IntegrityError):
            ueb.unpack(junk)


@given(st.integers(56, 10**12), st.integers(1, 20), st.data())
def test_geometry_and_layout_invariants(size: int, k: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(k, 30))
    maxseg = data.draw(st.sampled_from([4096, 131072, 1 << 20]))
    g = FileGeometry.for_upload(size, k, n, maxseg)
    assert g.segment_size % k == 0
    assert g.share_data_length == -(-size // k) or g.num_segments > 1
    assert (g.num_segments - 1) * g.segment_size + g.tail_size == size
    lay = layout_for(g)
    assert parse_header(lay.header() + bytes(8)) == lay
    assert lay.version == (1 if lay.ueb < 2**32 and g.share_data_length < 2**32 else 2)
