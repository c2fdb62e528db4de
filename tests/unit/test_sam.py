"""SAM v3 messages and I2P keys (veil.formats.sam), against bytes from a real i2pd.

The vector file is one ``DEST GENERATE SIGNATURE_TYPE=7`` answer of i2pd
2.45.1 (Debian 12) on the project's private test network; the router's web
console listed the destination as ``B32_FROM_ROUTER`` once a session used it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from veil.errors import FormatError
from veil.formats import sam

VECTOR = Path(__file__).parent.parent / "data" / "vectors" / "i2pd-2.45.1-dest-generate.txt"
B32_FROM_ROUTER = "wziyubeawzeaw4eb2j3tccwq3ekfy2ebop4ny3yk4v5mfwjtfp4a.b32.i2p"


def _vector() -> tuple[str, str]:
    reply = sam.parse_reply(VECTOR.read_bytes())
    assert (reply.topic, reply.kind) == ("DEST", "REPLY")
    return reply.values["PUB"], reply.values["PRIV"]


def test_the_public_destination_is_cut_from_the_private_key() -> None:
    pub, priv = _vector()
    assert sam.destination_of_private_key(priv) == pub
    assert sam.signature_type(sam.destination_bytes(pub)) == sam.SIGNATURE_TYPE_ED25519


def test_b32_address_is_the_one_the_router_shows() -> None:
    pub, _ = _vector()
    assert sam.b32_address(pub) == B32_FROM_ROUTER
    assert sam.is_b32_address(B32_FROM_ROUTER.upper())
    assert not sam.is_b32_address("abc.i2p") and not sam.is_b32_address(B32_FROM_ROUTER + ".")
    digest = hashlib.sha256(sam.b64decode(pub)).digest()
    assert len(digest) == 32 and len(B32_FROM_ROUTER) == sam.B32_LENGTH + len(sam.B32_SUFFIX)


def test_i2p_base64_uses_dash_and_tilde() -> None:
    data = bytes(range(256)) * 3
    text = sam.b64encode(data)
    assert "+" not in text and "/" not in text and ("-" in text or "~" in text)
    assert sam.b64decode(text) == data
    assert sam.b64decode(text.rstrip("=")) == data
    with pytest.raises(sam.SamError):
        sam.b64decode("abc+/def")


def test_a_public_destination_is_not_a_private_key() -> None:
    pub, priv = _vector()
    with pytest.raises(sam.SamError, match="cut short"):
        sam.destination_of_private_key(pub)
    with pytest.raises(sam.SamError):
        sam.destination_bytes(priv)  # extra bytes after the certificate
    with pytest.raises(sam.SamError, match="at least 387"):
        sam.destination_bytes(sam.b64encode(b"\0" * 100))


def test_a_dsa_key_is_refused() -> None:
    # a destination with a NULL certificate (type 0) is DSA-SHA1, SAM's old default
    dsa = b"\1" * 384 + b"\0\0\0" + b"\2" * (256 + 20)
    with pytest.raises(sam.SamError, match="signature type 0"):
        sam.destination_of_private_key(sam.b64encode(dsa))


def test_commands_are_single_lines_with_ed25519() -> None:
    line = sam.session_create("veil-1", options={"inbound.quantity": "3"})
    assert line == (
        b"SESSION CREATE STYLE=STREAM ID=veil-1 DESTINATION=TRANSIENT SIGNATURE_TYPE=7 "
        b"inbound.quantity=3\n"
    )
    _, priv = _vector()
    assert sam.session_create("s", priv).count(b"\n") == 1
    assert sam.stream_connect("s", B32_FROM_ROUTER) == (
        b"STREAM CONNECT ID=s DESTINATION=" + B32_FROM_ROUTER.encode() + b" SILENT=false\n"
    )
    assert sam.stream_accept("s") == b"STREAM ACCEPT ID=s SILENT=false\n"
    assert sam.stream_forward("s", 8080) == (
        b"STREAM FORWARD ID=s PORT=8080 HOST=127.0.0.1 SILENT=true\n"
    )
    assert sam.dest_generate() == b"DEST GENERATE SIGNATURE_TYPE=7\n"
    assert sam.naming_lookup("ME") == b"NAMING LOOKUP NAME=ME\n"
    assert sam.HELLO == b"HELLO VERSION MIN=3.1 MAX=3.3\n"


@pytest.mark.parametrize(
    "make",
    [
        lambda: sam.session_create("bad id"),
        lambda: sam.session_create("s", "TRANSIENT\nSESSION CREATE"),
        lambda: sam.session_create("s", options={"a=b": "c"}),
        lambda: sam.stream_connect("s", 'x" y'),
        lambda: sam.stream_forward("s", 0),
        lambda: sam.naming_lookup(""),
    ],
)
def test_no_command_can_carry_a_second_line_or_word(make: object) -> None:
    with pytest.raises(sam.SamError):
        make()  # type: ignore[operator]


def test_replies_parse_with_quoted_messages() -> None:
    reply = sam.parse_reply(b'STREAM STATUS RESULT=I2P_ERROR MESSAGE="Stream closed by peer"\n')
    assert reply.result == "I2P_ERROR"
    assert reply.values["MESSAGE"] == "Stream closed by peer"
    ok = sam.check(sam.parse_reply("HELLO REPLY RESULT=OK VERSION=3.1"), "HELLO", "REPLY", "hi")
    assert ok.values["VERSION"] == "3.1"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("STREAM STATUS RESULT=CANT_REACH_PEER", "cannot be reached"),
        ("SESSION STATUS RESULT=DUPLICATED_DEST", "already in use"),
        ("HELLO REPLY RESULT=NOVERSION", "no SAM version"),
        ("STREAM STATUS RESULT=SOMETHING_NEW", "RESULT=SOMETHING_NEW"),
    ],
)
def test_errors_are_in_words(line: str, words: str) -> None:
    topic, kind = line.split()[:2]
    with pytest.raises(sam.SamError, match=words) as caught:
        sam.check(sam.parse_reply(line), topic, kind, "doing it")
    assert isinstance(caught.value, FormatError)
    assert caught.value.result == re.search(r"RESULT=(\w+)", line).group(1)  # type: ignore[union-attr]


def test_a_wrong_topic_or_garbage_is_refused() -> None:
    with pytest.raises(sam.SamError, match="answered SESSION STATUS"):
        sam.check(sam.parse_reply("SESSION STATUS RESULT=OK"), "STREAM", "STATUS", "x")
    for garbage in ("", "OK", "A=1 B=2", 'HELLO REPLY MESSAGE="unterminated'):
        with pytest.raises(sam.SamError):
            sam.parse_reply(garbage)


def test_naming_replies() -> None:
    pub, _ = _vector()
    reply = sam.parse_reply(f"NAMING REPLY RESULT=OK NAME=ME VALUE={pub}")
    assert sam.parse_naming_reply(reply, "ME") == pub
    missing = sam.parse_reply("NAMING REPLY RESULT=KEY_NOT_FOUND NAME=x.i2p")
    with pytest.raises(sam.SamError, match="not known"):
        sam.parse_naming_reply(missing, "x.i2p")
