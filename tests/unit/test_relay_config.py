"""``veil relay`` as a user types it, and a storage node's relay settings:
tickets kept private, one announced address per relay, and fail-closed
refusals (a missing ticket, tunnels that would reveal a hidden IP address)."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.node.relay_directory import RelayDirectory
from veil.adapters.node.relay_links import (
    NodeRelays,
    direct_address,
    relay_tickets,
    relays_through_tor,
    with_relay_hints,
)
from veil.errors import ConfigError
from veil.formats.relay_protocol import ExternalRelay, parse_relay_entry, secret_text
from veil.formats.tor_settings import privacy_problems
from veil.frontends.cli.main import main


def veil(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(args))
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def relay_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "relay"
    args = ["relay", "create", str(path), "--listen", "0.0.0.0:4430"]
    assert veil(capsys, *args, "--public-host", "Relay.Example.org")[0] == 0
    return path


def test_add_backend_prints_a_ticket_and_keeps_the_secret_private(
    relay_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = veil(capsys, "relay", "add-backend", str(relay_dir), "bob", "--port", "4431")
    assert code == 0
    ticket = parse_relay_entry(out)
    assert not isinstance(ticket, ExternalRelay)
    assert (ticket.tunnel_host, ticket.tunnel_port) == ("relay.example.org", 4430)
    assert (ticket.public_host, ticket.public_port) == ("relay.example.org", 4431)
    assert secret_text(ticket.secret) not in err
    backends = relay_dir / "private" / "backends.yaml"
    assert stat.S_IMODE(backends.stat().st_mode) == 0o600
    assert stat.S_IMODE((relay_dir / "private").stat().st_mode) == 0o700
    [bob] = RelayDirectory(relay_dir).backends().values()
    assert bob.secret == ticket.secret and bob.port == 4431


def test_without_a_port_a_backend_is_reached_by_sni(
    relay_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = veil(capsys, "relay", "add-backend", str(relay_dir), "carol")[1]
    ticket = parse_relay_entry(out)
    assert (ticket.public_host, ticket.public_port) == ("carol.relay.example.org", 4430)
    assert RelayDirectory(relay_dir).backends()["carol"].sni_names == ("carol.relay.example.org",)


def test_relay_mistakes_are_one_line_and_change_nothing(
    relay_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert veil(capsys, "relay", "add-backend", str(relay_dir), "bob")[0] == 0
    before = (relay_dir / "private" / "backends.yaml").read_bytes()
    for args in (
        ["add-backend", str(relay_dir), "bob"],
        ["add-backend", str(relay_dir), "Not_A_Label"],
        ["add-backend", str(relay_dir), "dave", "--port", "4430"],  # the shared port
        ["add-backend", str(tmp_path / "nowhere"), "dave"],
        ["create", str(relay_dir), "--public-host", "x"],
    ):
        code, out, err = veil(capsys, "relay", *args)
        assert code == 1 and out == "" and err.startswith("veil: error:"), (args, err)
    assert (relay_dir / "private" / "backends.yaml").read_bytes() == before


def test_join_reads_the_ticket_from_stdin_and_announces_each_relay(
    relay_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ticket = veil(capsys, "relay", "add-backend", str(relay_dir), "bob", "--port", "4431")[1]
    node = tmp_path / "bob"
    NodeDirectory.create(node)
    assert veil(capsys, "relay", "join", str(node), "alice", stdin=ticket)[0] == 0
    kite = "pagekite://bob.kite.example:443\n"
    assert veil(capsys, "relay", "join", str(node), "kite", stdin=kite)[0] == 0
    saved = node / "private" / "relays" / "alice.ticket"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    parsed = parse_relay_entry(ticket)
    assert not isinstance(parsed, ExternalRelay)
    assert secret_text(parsed.secret) not in (node / "tahoe.cfg").read_text()
    nd = NodeDirectory(node)
    assert nd.get("storage", "relays", "") == "alice, kite"
    tickets = relay_tickets(nd)
    assert tickets["kite"] == ExternalRelay("bob.kite.example", 443)
    ann = {"anonymous-storage-NURLs": [], "anonymous-storage-FURL": "pb://x@/swiss"}
    with_relay_hints(nd, ann, NodeRelays(tickets))
    hosts = [n.split("@")[1].split("/")[0] for n in ann["anonymous-storage-NURLs"]]
    assert hosts == ["relay.example.org:4431", "bob.kite.example:443"]
    assert (
        "@tcp:relay.example.org:4431,tcp:bob.kite.example:443/swiss"
        in ann["anonymous-storage-FURL"]
    )
    assert direct_address(NodeRelays(tickets), "127.0.0.1") is None  # loopback: relays only
    assert direct_address(NodeRelays(tickets), "198.51.100.7") == "198.51.100.7"
    code, _, err = veil(capsys, "relay", "join", str(node), "alice", stdin=ticket)
    assert code == 1 and "already" in err
    code, _, err = veil(capsys, "relay", "join", str(node), "other", stdin="not a ticket\n")
    assert code == 1 and "not a relay ticket" in err


def test_a_named_relay_without_its_ticket_stops_the_node(tmp_path: Path) -> None:
    node = tmp_path / "n"
    NodeDirectory.create(node)
    text = (node / "tahoe.cfg").read_text().replace("[storage]\n", "[storage]\nrelays = gone\n")
    (node / "tahoe.cfg").write_text(text)
    with pytest.raises(ConfigError, match=r"names 'gone' but .* does not exist"):
        relay_tickets(NodeDirectory(node))


def test_a_node_hiding_its_ip_tunnels_only_through_tor(tmp_path: Path) -> None:
    node = tmp_path / "n"
    NodeDirectory.create(node)
    nd = NodeDirectory(node)
    assert relays_through_tor(nd) is False  # a node that shows its IP may tunnel directly
    cfg = (node / "tahoe.cfg").read_text()
    hidden = cfg.replace("[node]\n", "[node]\nreveal-IP-address = false\n")
    (node / "tahoe.cfg").write_text(
        hidden.replace("[storage]\n", "[storage]\nrelays.tor = false\n")
    )
    with pytest.raises(ConfigError, match="would tell every relay this node's IP address"):
        relays_through_tor(NodeDirectory(node))
    (node / "tahoe.cfg").write_text(hidden)
    assert relays_through_tor(NodeDirectory(node)) is True


def test_hiding_the_ip_a_server_may_be_reached_through_relays_only() -> None:
    hidden = {"node": {"reveal-IP-address": "false"}, "connections": {"tcp": "tor"}}
    alone = privacy_problems({**hidden, "storage": {}})
    assert any("would be reached at its IP address" in p for p in alone)
    relayed = privacy_problems({**hidden, "storage": {"relays": "alice"}})
    assert not any("would be reached at its IP address" in p for p in relayed)
    direct = privacy_problems({**hidden, "storage": {"relays": "alice", "relays.tor": "false"}})
    assert any("relays.tor = false would tell every relay" in p for p in direct)
