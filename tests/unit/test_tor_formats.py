"""SOCKS5 messages, control-port messages, onion keys, Tor discovery order and
the fail-closed privacy checks: the pure parts of veil's Tor support."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import ConfigError, FormatError, UsageError
from veil.formats import socks5
from veil.formats import tor_control as tc
from veil.formats.onion import OnionKey, address_of, parse_key_blob, pubkey_of_address
from veil.formats.tor_settings import (
    Endpoint,
    control_search,
    parse_endpoint,
    privacy_problems,
    socks_search,
)

# -- SOCKS5 ----------------------------------------------------------------------------


def test_connect_request_sends_the_name_unresolved() -> None:
    req = socks5.connect_request("example.onion", 3457)
    assert req == b"\x05\x01\x00\x03\x0dexample.onion\x0d\x81"
    # even a numeric address goes as a name: Tor parses it, nothing is resolved here
    assert socks5.connect_request("127.0.0.1", 80)[3] == socks5.ATYP_DOMAIN
    with pytest.raises(UsageError):
        socks5.connect_request("x" * 256, 80)
    with pytest.raises(UsageError):
        socks5.connect_request("a", 0)


def test_greeting_offers_only_username_password() -> None:
    assert socks5.GREETING == b"\x05\x01\x02"
    socks5.check_method_reply(b"\x05\x02")
    with pytest.raises(socks5.SocksError, match="cannot be isolated"):
        socks5.check_method_reply(b"\x05\xff")
    with pytest.raises(socks5.SocksError, match="chose method 0"):
        socks5.check_method_reply(b"\x05\x00")  # no-auth would lose isolation
    with pytest.raises(socks5.SocksError, match="does not speak SOCKS5"):
        socks5.check_method_reply(b"HT")


def test_credentials_and_auth() -> None:
    creds = socks5.Credentials("veil:v0-abc", "nonce")
    assert socks5.auth_request(creds) == b"\x01\x0bveil:v0-abc\x05nonce"
    socks5.check_auth_reply(b"\x01\x00")
    with pytest.raises(socks5.SocksError, match="rejected"):
        socks5.check_auth_reply(b"\x01\x01")
    with pytest.raises(UsageError):
        socks5.Credentials("", "x")
    with pytest.raises(UsageError):
        socks5.Credentials("u", "p" * 256)


def test_reply_lengths_and_tor_errors() -> None:
    assert socks5.reply_remaining(b"\x05\x00\x00\x01\x7f") == 5
    assert socks5.reply_remaining(b"\x05\x00\x00\x04\x00") == 17
    assert socks5.reply_remaining(b"\x05\x00\x00\x03\x09") == 11
    with pytest.raises(socks5.SocksError, match="descriptor not found") as info:
        socks5.reply_remaining(b"\x05\xf0\x00\x01\x00")
    assert info.value.code == 0xF0
    with pytest.raises(socks5.SocksError, match="connection refused"):
        socks5.reply_remaining(b"\x05\x05\x00\x01\x00")
    with pytest.raises(socks5.SocksError, match="malformed"):
        socks5.reply_remaining(b"\x04\x00\x00\x01\x00")


@given(st.binary(min_size=5, max_size=5))
def test_any_reply_head_is_a_length_or_a_socks_error(head: bytes) -> None:
    try:
        n = socks5.reply_remaining(head)
    except socks5.SocksError:
        return
    assert 2 <= n <= 257


# -- control port ------------------------------------------------------------------------


def _reply(*lines: str) -> tc.Reply:
    status = 0
    texts = []
    for raw in lines:
        status, _, text = tc.split_line(raw)
        texts.append(text)
    return tc.Reply(status, texts)


def test_protocolinfo_methods_and_cookie_path() -> None:
    info = tc.parse_protocolinfo(
        _reply(
            "250-PROTOCOLINFO 1",
            '250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/lib/t \\"x\\"/control_auth_cookie"',
            '250-VERSION Tor="0.4.9.11"',
            "250 OK",
        )
    )
    assert info.methods == {"COOKIE", "SAFECOOKIE"}
    assert info.cookie_file == '/var/lib/t "x"/control_auth_cookie'
    assert tc.parse_protocolinfo(_reply("250-AUTH METHODS=NULL", "250 OK")).cookie_file is None
    with pytest.raises(tc.ControlError):
        tc.parse_protocolinfo(_reply("250 OK"))
    with pytest.raises(tc.ControlError):
        tc.split_line("garbage")


def test_safecookie_checks_tor_knows_the_cookie() -> None:
    cookie, cnonce, snonce = b"c" * 32, b"n" * 32, b"s" * 32
    server_hash = hmac.new(tc.SERVER_KEY, cookie + cnonce + snonce, hashlib.sha256).hexdigest()
    line = f"250 AUTHCHALLENGE SERVERHASH={server_hash} SERVERNONCE={snonce.hex()}"
    got_nonce, client_hash = tc.check_authchallenge(_reply(line), cookie, cnonce)
    assert got_nonce == snonce
    assert client_hash == tc.safecookie_client_hash(cookie, cnonce, snonce)
    with pytest.raises(tc.ControlError, match="does not know our cookie"):
        tc.check_authchallenge(_reply(line), b"d" * 32, cnonce)


def test_add_onion_and_service_id() -> None:
    key = OnionKey.from_seed(b"\x01" * 32)
    cmd = tc.add_onion(key.to_blob(), [(3457, "127.0.0.1:4000"), (3458, "127.0.0.1:4001")])
    assert cmd.startswith("ADD_ONION ED25519-V3:")
    assert cmd.endswith("Flags=DiscardPK Port=3457,127.0.0.1:4000 Port=3458,127.0.0.1:4001")
    sid = key.service_id
    assert tc.service_id(_reply(f"250-ServiceID={sid}", "250 OK")) == sid
    with pytest.raises(tc.ControlError, match="refused"):
        tc.service_id(_reply("512 Bad arguments"))
    with pytest.raises(tc.ControlError):
        tc.del_onion("not-an-id")
    with pytest.raises(tc.ControlError):
        tc.quote("a\r\nSIGNAL HALT")  # no command injection through a password


# -- onion keys ------------------------------------------------------------------------------


def test_onion_address_round_trip_and_checksum() -> None:
    key = OnionKey.from_seed(bytes(range(32)))
    assert len(key.address) == 62 and key.address.endswith("d.onion")  # version 3 ends in 'd'
    assert pubkey_of_address(key.address) == key.pubkey
    assert pubkey_of_address(key.address.upper()) == key.pubkey
    broken = ("a" if key.address[0] != "a" else "b") + key.address[1:]
    with pytest.raises(UsageError, match="checksum"):
        pubkey_of_address(broken)
    with pytest.raises(UsageError):
        pubkey_of_address("example.onion")
    with pytest.raises(FormatError):
        address_of(b"short")


def test_expanded_key_is_clamped_and_blob_checked() -> None:
    key = OnionKey.from_seed(b"\xff" * 32)
    assert key.expanded[0] & 7 == 0 and key.expanded[31] & 0xC0 == 0x40
    assert parse_key_blob(key.to_blob() + "\n") == key.to_blob()
    for bad in ("RSA1024:abc", "ED25519-V3:!!", "ED25519-V3:" + "A" * 8):
        with pytest.raises(FormatError):
            parse_key_blob(bad)


# -- finding Tor -------------------------------------------------------------------------


def test_environment_comes_first_and_is_used_alone() -> None:
    s = socks_search({"TOR_SOCKS_IPC_PATH": "/run/x/socks", "TOR_SOCKS_PORT": "1"}, {})
    assert s.endpoints == (Endpoint(path="/run/x/socks"),) and s.explicit
    s = socks_search({"TOR_SOCKS_PORT": "9999"}, {"socks.port": "tcp:127.0.0.1:1"})
    assert s.endpoints == (Endpoint("127.0.0.1", 9999),) and s.source == "TOR_SOCKS_HOST/PORT"
    s = socks_search({}, {"socks.port": "unix:/tmp/s"})
    assert s.endpoints == (Endpoint(path="/tmp/s"),) and s.source == "[tor] socks.port"
    s = socks_search({}, {})
    assert not s.explicit
    assert [str(e) for e in s.endpoints] == [
        "unix:/var/run/tor/socks",
        "127.0.0.1:9050",
        "127.0.0.1:9150",
    ]
    c = control_search({"TOR_CONTROL_HOST": "127.0.0.2"}, {})
    assert c.endpoints == (Endpoint("127.0.0.2", 9051),)
    assert [str(e) for e in control_search({}, {}).endpoints][-1] == "127.0.0.1:9151"


def test_endpoint_forms() -> None:
    assert parse_endpoint("9050") == Endpoint("127.0.0.1", 9050)
    assert parse_endpoint("tcp:9050") == Endpoint("127.0.0.1", 9050)
    assert parse_endpoint("tcp:127.0.0.3:9050") == Endpoint("127.0.0.3", 9050)
    assert parse_endpoint("tcp:host=127.0.0.2:port=9051") == Endpoint("127.0.0.2", 9051)
    assert parse_endpoint("[::1]:9050") == Endpoint("::1", 9050)
    for bad in ("unix:relative/path", "tcp:localhost:99999", "tor", "", "::1:9050"):
        with pytest.raises(ConfigError):
            parse_endpoint(bad)


# -- fail closed -------------------------------------------------------------------------


SAFE_SERVER = {
    "node": {"reveal-IP-address": "false", "tub.location": "tor:x.onion:3457"},
    "connections": {"tcp": "tor"},
    "tor": {"onion": "true"},
    "storage": {"enabled": "true"},
}


def test_a_safe_configuration_has_no_problems() -> None:
    assert privacy_problems(SAFE_SERVER) == []
    client = {"node": {"reveal-ip-address": "false"}, "storage": {"enabled": "false"}}
    assert privacy_problems(client) == []
    web = {**client, "node": {"web.port": "tcp:3456:interface=127.0.0.1"}}
    assert privacy_problems(web) == []


@pytest.mark.parametrize(
    ("section", "key", "value", "says"),
    [
        ("connections", "tcp", "tcp", "connect to servers directly"),
        ("tor", "enabled", "false", "leaves no way to connect"),
        ("node", "tub.location", "AUTO", "reveals this machine's address"),
        ("node", "tub.location", "AUTODETECT", "reveals this machine's address"),
        ("node", "tub.location", "tcp:203.0.113.5:3457", "reveals"),
        ("node", "tub.location", "example.org:3457", "reveals"),
        ("tor", "onion", "false", "make it an onion service"),
        ("storage", "hostname", "0.0.0.0", "would listen on a network interface"),
        ("node", "web.port", "tcp:3456", "listens on every interface"),
        ("node", "web.port", "tcp:3456:interface=0.0.0.0", "listens on every interface"),
    ],
)
def test_each_unsafe_setting_is_named(section: str, key: str, value: str, says: str) -> None:
    config = {s: dict(v) for s, v in SAFE_SERVER.items()}
    config.setdefault(section, {})[key] = value
    problems = privacy_problems(config)
    assert len(problems) == 1 and says in problems[0], problems


def test_an_introducer_must_be_an_onion_service_too() -> None:
    config = {
        "node": {"reveal-IP-address": "false"},
        "storage": {"enabled": "false"},
        "introducer": {"enabled": "true"},
    }
    assert "runs a introducer server" in privacy_problems(config)[0]
    config["tor"] = {"onion": "true"}
    assert privacy_problems(config) == []
