"""The relay tunnel protocol: frames, the HELLO proof of the secret, tickets,
and SNI read from real ClientHellos (made by OpenSSL in memory, no sockets)."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import FormatError
from veil.formats import relay_protocol as rp

SECRET = bytes(range(32))
NONCE = b"\xaa" * 32


def client_hello(server_name: str | None) -> bytes:
    """The first flight OpenSSL sends for ``server_name`` (None: no SNI)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_frames_round_trip_and_refuse_garbage() -> None:
    frame = rp.encode_frame(rp.Frame.CHALLENGE, NONCE)
    assert rp.parse_header(frame[:3]) == (rp.Frame.CHALLENGE, 32)
    with pytest.raises(FormatError, match="unknown relay frame type"):
        rp.parse_header(b"\x63\x00\x00")
    with pytest.raises(FormatError, match="too long"):
        rp.parse_header(b"\x02\xff\xff")
    with pytest.raises(FormatError):
        rp.encode_frame(rp.Frame.HELLO, b"x" * 2000)


def test_hello_proves_the_secret_without_sending_it() -> None:
    payload = rp.encode_hello(SECRET, NONCE, "bob")
    assert SECRET not in payload
    name, mac = rp.parse_hello(payload)
    assert name == "bob"
    assert rp.hello_is_valid(SECRET, NONCE, name, mac)
    assert not rp.hello_is_valid(SECRET, b"\xbb" * 32, name, mac)  # replay on a new nonce
    assert not rp.hello_is_valid(b"\x01" * 32, NONCE, name, mac)
    assert not rp.hello_is_valid(SECRET, NONCE, "carol", mac)  # not transferable to a name


@pytest.mark.parametrize("bad", [b"", b"\x03bob", b"\x03BOB" + b"m" * 32, b"\x09bob" + b"m" * 32])
def test_malformed_hellos_are_format_errors(bad: bytes) -> None:
    with pytest.raises(FormatError):
        rp.parse_hello(bad)


def test_ticket_round_trip_and_repr_hides_the_secret() -> None:
    ticket = rp.RelayTicket("bob", SECRET, "relay.example", 4430, "relay.example", 5001)
    text = ticket.to_string()
    assert text.startswith("veil-relay://bob:")
    assert rp.parse_ticket(text) == ticket
    assert rp.secret_text(SECRET) not in repr(ticket) + str(ticket)


@pytest.mark.parametrize(
    "bad",
    [
        "veil-relay://bob@relay:1/relay:2",
        "veil-relay://Bob:" + rp.secret_text(SECRET) + "@relay:1/relay:2",
        "veil-relay://bob:short@relay:1/relay:2",
        "veil-relay://bob:" + rp.secret_text(SECRET) + "@relay:0/relay:2",
        "https://bob:x@relay:1/relay:2",
    ],
)
def test_bad_tickets_say_what_is_expected(bad: str) -> None:
    with pytest.raises(FormatError) as caught:
        rp.parse_ticket(bad)
    assert rp.secret_text(SECRET) not in str(caught.value)


def test_sni_of_a_real_client_hello() -> None:
    hello = client_hello("Bob.Relay.Example")
    assert rp.sni_of_client_hello(hello) == rp.SniResult(True, "bob.relay.example")
    assert rp.sni_of_client_hello(client_hello(None)) == rp.SniResult(True, None)


def test_sni_needs_the_whole_client_hello_however_it_is_cut() -> None:
    hello = client_hello("bob.example")
    for cut in range(len(hello)):
        assert rp.sni_of_client_hello(hello[:cut]) == rp.NEED_MORE
    assert rp.sni_of_client_hello(hello).name == "bob.example"


def test_sni_across_several_records() -> None:
    hello = client_hello("split.example")
    body = hello[5:]
    records = b"".join(
        hello[:3] + len(part).to_bytes(2, "big") + part
        for part in (body[:40], body[40:41], body[41:])
    )
    assert rp.sni_of_client_hello(records).name == "split.example"


def test_not_a_client_hello() -> None:
    with pytest.raises(FormatError):
        rp.sni_of_client_hello(b"GET / HTTP/1.1\r\n")
    with pytest.raises(FormatError):
        rp.sni_of_client_hello(b"\x16\x03\x01\x00\x04\x02\x00\x00\x00")  # a ServerHello


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_sni_reader(data: bytes) -> None:
    try:
        rp.sni_of_client_hello(b"\x16\x03\x01" + data)
    except FormatError:
        pass
