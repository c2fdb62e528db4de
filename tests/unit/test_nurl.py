"""NURLs, fURLs, SPKI hashes and tubids: the storage1 vector and hostile text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.adapters.http.tls import create_identity, spki_hash_of_pem, tubid_of_pem, tubid_text
from veil.errors import FormatError
from veil.formats import base32
from veil.formats.nurl import (
    NURL,
    build_nurl,
    lease_seed_from_furl,
    parse_furl,
    parse_nurl,
    parse_spki_hash,
    spki_hash_text,
)

VECTORS = Path(__file__).parent.parent / "data" / "vectors"
SPKI = "tAtErKhmY7fiz52cMtNcrF2oY8RnAxu7cNKCMFT8AGw"
TUBID = "hvssinolbtyby6r2iad77o5676ppdcjp"
SWISS = "cpqn4ejbkqla2rwfjr2oekewjnbecauu"
NURL_TEXT = f"pb://{SPKI}@127.0.0.1:47311/{SWISS}#v=1"
FURL_TEXT = f"pb://{TUBID}@tcp:127.0.0.1:47311/{SWISS}"


def test_storage1_certificate_vector() -> None:
    pem = (VECTORS / "storage1-cert.pem").read_bytes()
    assert spki_hash_of_pem(pem) == SPKI
    assert tubid_text(pem) == TUBID
    assert tubid_of_pem(pem) == base32.a2b(TUBID)


def test_storage1_nurl_vector() -> None:
    n = parse_nurl(NURL_TEXT)
    assert (n.scheme, n.spki_hash, n.host, n.port, n.swissnum) == (
        "pb",
        SPKI,
        "127.0.0.1",
        47311,
        SWISS,
    )
    assert n.to_string() == NURL_TEXT == str(n)
    assert n.base_url == "https://127.0.0.1:47311"
    assert n.authorization == "Tahoe-LAFS Y3BxbjRlamJrcWxhMnJ3ZmpyMm9la2V3am5iZWNhdXU="
    assert SWISS not in repr(n)
    assert build_nurl(SPKI, "127.0.0.1", 47311, SWISS) == n


def test_storage1_furl_vector() -> None:
    f = parse_furl(FURL_TEXT)
    assert f.tubid == base32.a2b(TUBID) and len(f.tubid) == 20
    assert f.hints == ("tcp:127.0.0.1:47311",) and f.swissnum == SWISS
    assert f.to_string() == FURL_TEXT
    assert SWISS not in repr(f)
    assert lease_seed_from_furl(FURL_TEXT) == f.tubid
    many = parse_furl(f"pb://{'a' * 32}@tcp:127.0.0.2:1,tor:x.onion:2/{SWISS}")
    assert many.tubid == bytes(20) and many.hints == ("tcp:127.0.0.2:1", "tor:x.onion:2")


def test_tor_and_ipv6_nurls_round_trip() -> None:
    tor = parse_nurl(f"pb+tor://{SPKI}@abcdefghijklmnop.onion:80/{SWISS}#v=1")
    assert tor.scheme == "pb+tor" and tor.host == "abcdefghijklmnop.onion" and tor.port == 80
    v6 = parse_nurl(f"pb://{SPKI}@[::1]:8080/{SWISS}#v=1")
    assert v6.host == "::1" and v6.netloc == "[::1]:8080"
    assert parse_nurl(v6.to_string()) == v6


@pytest.mark.parametrize(
    "text",
    [
        "",
        f"pb://{SPKI}@127.0.0.1:47311/{SWISS}",  # no fragment
        f"pb://{SPKI}@127.0.0.1:47311/{SWISS}#v=2",
        f"http://{SPKI}@127.0.0.1:47311/{SWISS}#v=1",
        f"pb://{SPKI[:-1]}@127.0.0.1:47311/{SWISS}#v=1",  # 42 chars
        f"pb://{SPKI[:-1]}x@127.0.0.1:47311/{SWISS}#v=1",  # not canonical
        f"pb://{SPKI}@127.0.0.1:0/{SWISS}#v=1",
        f"pb://{SPKI}@127.0.0.1:70000/{SWISS}#v=1",
        f"pb://{SPKI}@127.0.0.1/{SWISS}#v=1",
        f"pb://{SPKI}@tcp:127.0.0.1:47311/{SWISS}#v=1",  # fURL-style location
        f"pb://{SPKI}@127.0.0.1:47311/#v=1",
        f"pb://{SPKI}@127.0.0.1:47311/a/b#v=1",
        f"pb://{SPKI}@exa mple:47311/{SWISS}#v=1",
    ],
)
def test_malformed_nurls_are_refused(text: str) -> None:
    with pytest.raises(FormatError):
        parse_nurl(text)


@pytest.mark.parametrize(
    "text",
    [
        "pb://x@tcp:h:1/s",
        f"pb://{TUBID[:-1]}@tcp:h:1/{SWISS}",
        f"pb://{TUBID.upper()}@tcp:h:1/{SWISS}",
        f"pb://{TUBID}@tcp:h:1/",
        f"pb://{TUBID}@tcp:h:1",
        NURL_TEXT,
    ],
)
def test_malformed_furls_are_refused(text: str) -> None:
    with pytest.raises(FormatError):
        parse_furl(text)


def test_constructor_validates() -> None:
    with pytest.raises(FormatError):
        NURL("pb", SPKI, "[::1]", 1, SWISS)
    with pytest.raises(FormatError):
        NURL("pb", "short", "h", 1, SWISS)
    with pytest.raises(FormatError):
        NURL("pb", SPKI, "h", 1, "a/b")


def test_spki_hash_text_round_trips(tmp_path: Path) -> None:
    digest = bytes(range(32))
    assert parse_spki_hash(spki_hash_text(digest)) == digest
    with pytest.raises(FormatError):
        spki_hash_text(b"\x00" * 20)
    create_identity(tmp_path / "k", tmp_path / "c")
    assert len(parse_spki_hash(spki_hash_of_pem((tmp_path / "c").read_bytes()))) == 32
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_format_error(text: str) -> None:
    for parse in (parse_nurl, parse_furl):
        try:
            parse(text)
        except FormatError:
            pass


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,3}", fullmatch=True),
    st.integers(1, 65535),
    st.from_regex(r"[a-z2-7]{1,40}", fullmatch=True),
)
def test_valid_nurls_round_trip(digest: bytes, host: str, port: int, swiss: str) -> None:
    n = build_nurl(spki_hash_text(digest), host, port, swiss)
    assert parse_nurl(n.to_string()) == n
