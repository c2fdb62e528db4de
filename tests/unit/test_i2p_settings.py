"""I2P settings: a Tahoe 1.20 node directory with ``[i2p]`` loads, the fail-closed
rules accept I2P where they accept Tor, and pb+i2p:// NURLs go only to I2P.

The Tahoe directory is written as ``tahoe create-node --hide-ip --listen=i2p``
writes one (allmydata/util/i2p_provider.py: ``[i2p] enabled/sam.port/dest/
dest.port/dest.private_key_file``, ``tub.port = listen:i2p``, an ``i2p:``
location); Tahoe 1.20 itself serves such a node over Foolscap only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from veil.adapters.net.connection_policy import Networks
from veil.adapters.net.tcp import TcpProvider
from veil.adapters.node.client_session import needs_i2p, storage_client_for
from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError
from veil.formats import sam
from veil.formats.i2p_settings import anonymity_networks, i2p_hints, i2p_settings
from veil.formats.nurl import parse_furl, parse_nurl
from veil.formats.tor_settings import privacy_problems

VECTOR = Path(__file__).parent.parent / "data" / "vectors" / "i2pd-2.45.1-dest-generate.txt"
SPKI = "A" * 43


def _key() -> tuple[str, str]:
    text = VECTOR.read_text()
    priv = re.search(r"PRIV=(\S+)", text).group(1)  # type: ignore[union-attr]
    return priv, sam.b32_address(sam.destination_of_private_key(priv))


def _tahoe_i2p_node(path: Path, location: str) -> None:
    priv, _ = _key()
    (path / "private").mkdir(parents=True, mode=0o700)
    (path / "private" / "i2p_dest.privkey").write_text(priv)
    (path / "private" / "i2p_dest.privkey").chmod(0o600)
    (path / "tahoe.cfg").write_text(
        "[node]\nnickname = \nweb.port = tcp:3456:interface=127.0.0.1\n"
        "reveal-IP-address = false\ntub.port = listen:i2p\n"
        f"tub.location = {location}\n\n"
        "[client]\nshares.needed = 3\nshares.happy = 7\nshares.total = 10\n\n"
        "[storage]\nenabled = true\nreserved_space = 1G\n\n"
        "[connections]\ntcp = disabled\n\n"
        "[tor]\nenabled = false\n\n"
        "[i2p]\nenabled = true\nsam.port = tcp:127.0.0.1:7656\ndest = true\n"
        "dest.port = 3457\ndest.private_key_file = private/i2p_dest.privkey\n"
    )
    (path / "tahoe.cfg").chmod(0o600)


@pytest.mark.parametrize("with_port", [True, False])
def test_a_tahoe_i2p_node_directory_loads_and_may_hide_its_ip(
    tmp_path: Path, with_port: bool
) -> None:
    _, b32 = _key()
    location = f"i2p:{b32}:3457" if with_port else f"i2p:{b32}"
    _tahoe_i2p_node(tmp_path, location)
    node = NodeDirectory(tmp_path)
    assert node.hides_ip
    node.require_network_allowed()  # an I2P destination is as good as an onion here
    settings = i2p_settings({"i2p": node.section("i2p")})
    assert settings.required and settings.dest and settings.dest_port == 3457
    assert i2p_hints(node.get("node", "tub.location", "")) == [(b32, 3457)]
    assert anonymity_networks({"i2p": node.section("i2p"), "tor": node.section("tor")}) == {"i2p"}


def test_a_tahoe_furl_with_an_i2p_hint_parses() -> None:
    _, b32 = _key()
    furl = parse_furl(f"pb://{'a' * 32}@i2p:{b32.upper()}:3457,tor:x.onion:3457/swiss")
    assert furl.hints == (f"i2p:{b32}:3457", "tor:x.onion:3457")


def test_hiding_the_ip_needs_tor_or_i2p_and_servers_behind_one() -> None:
    base = {"node": {"reveal-IP-address": "false"}, "connections": {"tcp": "disabled"}}
    no_network = {**base, "tor": {"enabled": "false"}, "storage": {"enabled": "false"}}
    assert any("leaves no way to connect" in p for p in privacy_problems(no_network))
    i2p_client = {**no_network, "i2p": {"enabled": "true"}}
    assert privacy_problems(i2p_client) == []
    plain_server = {**i2p_client, "storage": {"enabled": "true"}}
    assert any("I2P destination" in p for p in privacy_problems(plain_server))
    i2p_server = {**plain_server, "i2p": {"enabled": "true", "dest": "true"}}
    assert privacy_problems(i2p_server) == []
    clear = {**i2p_server, "connections": {"tcp": "tcp"}}
    assert any("[connections] tcp = tcp" in p for p in privacy_problems(clear))


class FakeI2P(TcpProvider):
    """Stands for I2PProvider: only its name is looked at by the policy."""

    name = "i2p"


def test_i2p_nurls_go_to_i2p_only() -> None:
    _, b32 = _key()
    i2p_nurl = parse_nurl(f"pb+i2p://{SPKI}@{b32}:3457/swiss#v=1")
    assert i2p_nurl.host == b32
    sneaky = parse_nurl(f"pb://{SPKI}@{b32.upper()}.:3457/swiss#v=1")  # an I2P name as "TCP"
    tcp = TcpProvider()
    without = Networks(tcp, None, anonymous=False)
    assert without.provider_for(i2p_nurl) is None and without.provider_for(sneaky) is None
    assert "only through I2P and I2P is not configured" in without.why_unreachable([i2p_nurl])
    fake = FakeI2P()
    both = Networks(tcp, None, anonymous=True, i2p=fake)
    assert both.provider_for(i2p_nurl) is fake and both.provider_for(sneaky) is fake
    ann = {"anonymous-storage-NURLs": [i2p_nurl.to_string()]}
    assert needs_i2p("v0-x", ann)
    assert storage_client_for("v0-x", ann, both).via == "i2p"
    with pytest.raises(ConfigError, match="only through I2P"):
        storage_client_for("v0-x", ann, without)


def test_a_key_file_that_is_not_a_key_is_named(tmp_path: Path) -> None:
    from veil.adapters.net.sam_client import require_ed25519_key

    with pytest.raises(ConfigError, match=r"i2p_dest\.privkey is not an I2P private key"):
        require_ed25519_key("not a key", str(tmp_path / "i2p_dest.privkey"))
