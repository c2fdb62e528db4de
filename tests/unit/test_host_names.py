"""Host names are normalized once, when parsed (issue 10, item 6).

``ABC...XYZ.ONION`` and ``abc...xyz.onion.`` are the same onion name as
``abc...xyz.onion``: a client that does not hide its IP address routes them
through Tor, or refuses them when Tor is off, and never hands them to the
system resolver (``TcpProvider``).
"""

from __future__ import annotations

import pytest

from veil.adapters.net.connection_policy import Networks
from veil.adapters.net.tcp import TcpProvider
from veil.adapters.net.tor import TorProvider
from veil.adapters.node.client_session import storage_client_for
from veil.errors import ConfigError, FormatError, UsageError
from veil.formats.nurl import (
    NURL,
    hint_host,
    is_anonymous_host,
    normalize_hint,
    normalize_host,
    parse_furl,
    parse_nurl,
)
from veil.formats.tor_settings import Endpoint

SPKI = "tAtErKhmY7fiz52cMtNcrF2oY8RnAxu7cNKCMFT8AGw"
SWISS = "cpqn4ejbkqla2rwfjr2oekewjnbecauu"
TUBID = "hvssinolbtyby6r2iad77o5676ppdcjp"
ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
SPELLINGS = [ONION.upper(), ONION + ".", ONION.upper() + ".", ONION.capitalize()]


def _nurl(host: str, scheme: str = "pb") -> str:
    return f"{scheme}://{SPKI}@{host}:3457/{SWISS}#v=1"


def _networks(tor: bool) -> Networks:
    return Networks(
        TcpProvider(),
        TorProvider(Endpoint("127.0.0.1", 9)) if tor else None,
        anonymous=False,
        tor_problem="Tor is not configured",
    )


@pytest.mark.parametrize("host", SPELLINGS)
def test_nurl_host_is_normalized_when_parsed(host: str) -> None:
    n = parse_nurl(_nurl(host))
    assert n.host == ONION
    assert n.to_string() == _nurl(ONION)
    assert NURL("pb", SPKI, host, 3457, SWISS).host == ONION  # built, not parsed
    assert parse_nurl(_nurl("Storage.Example.ORG.")).host == "storage.example.org"
    assert parse_nurl(_nurl("[2001:DB8::7]")).host == "2001:db8::7"


@pytest.mark.parametrize("bad", [ONION + "..", ".", "a..", "[::1]."])
def test_more_than_one_trailing_dot_is_malformed(bad: str) -> None:
    with pytest.raises(FormatError):
        parse_nurl(_nurl(bad))


@pytest.mark.parametrize("host", SPELLINGS)
def test_non_anonymous_client_routes_every_spelling_through_tor(host: str) -> None:
    for scheme in ("pb", "pb+tor"):
        nurl = parse_nurl(_nurl(host, scheme))
        chosen = _networks(tor=True).choose([nurl])
        assert chosen is not None and chosen[1].name == "tor"
        assert _networks(tor=True).provider_for(nurl) is not None
        assert _networks(tor=False).choose([nurl]) is None  # Tor off: refused, not TCP


@pytest.mark.parametrize("host", SPELLINGS)
def test_refused_with_tor_off_says_why(host: str) -> None:
    ann = {"anonymous-storage-NURLs": [_nurl(host)]}
    with pytest.raises(ConfigError, match="only as an onion service and Tor is not configured"):
        storage_client_for("v0-x", ann, _networks(tor=False))
    client = storage_client_for("v0-x", ann, _networks(tor=True))
    assert client.via == "tor" and client.nurl.host == ONION


@pytest.mark.parametrize("host", [*SPELLINGS, "NODE.I2P", "node.i2p."])
def test_tcp_provider_never_resolves_anonymous_names(host: str) -> None:
    assert is_anonymous_host(host)
    with pytest.raises(UsageError, match="only be reached through Tor or I2P"):
        TcpProvider().connector(host=host, port=3457, tls=False, isolation_key="k")


def test_i2p_names_are_refused_not_resolved() -> None:
    nurl = parse_nurl(_nurl("Node.I2P."))
    assert nurl.host == "node.i2p"
    assert _networks(tor=True).choose([nurl]) is None
    assert "I2P" in _networks(tor=True).why_unreachable([nurl])


def test_furl_hints_are_normalized() -> None:
    furl = parse_furl(f"pb://{TUBID}@TCP:Example.ORG.:3457,tor:{ONION.upper()}.:3457/{SWISS}")
    assert furl.hints == ("tcp:example.org:3457", f"tor:{ONION}:3457")
    assert [hint_host(h) for h in furl.hints] == ["example.org", ONION]
    assert normalize_hint("[2001:DB8::7]:3457") == "[2001:db8::7]:3457"
    assert hint_host("tcp:[2001:DB8::7]:3457") == "2001:db8::7"
    assert normalize_hint("tcp:host=EXAMPLE.org.:port=3457") == "tcp:host=example.org:port=3457"
    assert hint_host("tcp:host=EXAMPLE.org.:port=3457") == "example.org"
    assert normalize_host("ABC.Onion.") == "abc.onion"


@pytest.mark.parametrize(
    "location", [f"tcp:{ONION.upper()}:3457", f"{ONION}.:3457", "TOR:x.onion:1", "tcp:n.I2P.:1"]
)
def test_create_node_location_sees_every_spelling(location: str) -> None:
    from argparse import Namespace

    from veil.frontends.cli.create_node import _location

    with pytest.raises(UsageError, match="tor and i2p locations"):
        _location(Namespace(location=location, hostname="h", port=1))
    assert _location(Namespace(location="TCP:Example.ORG.:3457", hostname="h", port=1)) == (
        "example.org",
        3457,
    )
