"""Every unsafe anonymity setting a new user might try is refused, clearly.

Each case goes through the command line as a user would type it. Where a
command would connect, a real listening socket stands in for a storage
server and the test checks it was never contacted: refusing means no byte
left, not an error after the fact.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from veil.frontends.cli.main import main


def veil(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out + err


class Bait:
    """A TCP listener on 127.0.0.1 that counts connection attempts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def contacted(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def bait() -> Iterator[Bait]:
    b = Bait()
    yield b
    b.sock.close()


@pytest.fixture
def dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now
    return port


def _servers_yaml(node: Path, port: int) -> None:
    spki = "A" * 43
    ann = {"anonymous-storage-NURLs": [f"pb://{spki}@127.0.0.1:{port}/swiss#v=1"]}
    (node / "private" / "servers.yaml").write_text(
        yaml.safe_dump({"storage": {"v0-" + "a" * 52: {"ann": ann}}})
    )


def test_hide_ip_with_a_tcp_listener_is_refused_at_creation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = veil(capsys, "create-node", "--hide-ip", "--listen=tcp", str(tmp_path / "n"))
    assert code == 1 and "would publish this node's IP address" in text
    assert not (tmp_path / "n").exists()
    code, text = veil(capsys, "create-node", "--hide-ip", "--webport=tcp:3456", str(tmp_path / "w"))
    assert code == 1 and "every network interface" in text


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("node.reveal-IP-address", "false", "runs a storage server"),
        ("node.anonymize", "true", "runs a storage server"),  # the older name
    ],
)
def test_turning_on_hide_ip_on_a_tcp_storage_node_stops_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, value: str, says: str
) -> None:
    node = tmp_path / "n"
    assert veil(capsys, "create-node", str(node))[0] == 0
    assert veil(capsys, "-d", str(node), "config", "set", setting, value)[0] == 0
    code, text = veil(capsys, "run", str(node))
    assert code == 1 and says in text and "refusing to start" in text
    assert "veil create-node --listen=tor --hide-ip" in text


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("connections.tcp", "tcp", "connect to servers directly"),
        ("tor.enabled", "false", "leaves no way to connect"),
        ("node.tub.location", "AUTO", "reveals this machine's address"),
        ("node.web.port", "tcp:3456", "listens on every interface"),
    ],
)
def test_unsafe_client_settings_refuse_before_any_connection(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bait: Bait,
    setting: str,
    value: str,
    says: str,
) -> None:
    node = tmp_path / "c"
    assert veil(capsys, "create-client", "--hide-ip", str(node))[0] == 0
    _servers_yaml(node, bait.port)
    assert veil(capsys, "-d", str(node), "config", "set", setting, value)[0] == 0
    code, text = veil(capsys, "-d", str(node), "status")
    assert code == 1 and says in text
    assert bait.contacted() == 0


def test_no_tor_means_no_connection(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bait: Bait,
    dead_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = tmp_path / "c"
    assert veil(capsys, "create-client", "--hide-ip", str(node))[0] == 0
    _servers_yaml(node, bait.port)
    monkeypatch.setenv("TOR_SOCKS_PORT", str(dead_port))
    for command in (["status"], ["put", str(node / "tahoe.cfg")]):
        code, text = veil(capsys, "-d", str(node), *command)
        assert code == 1 and "TOR_SOCKS_HOST/PORT does not answer" in text
        assert "will not start" in text
    monkeypatch.delenv("TOR_SOCKS_PORT")
    monkeypatch.setenv("TOR_SOCKS_IPC_PATH", str(tmp_path / "no-such-socket"))
    code, text = veil(capsys, "-d", str(node), "status")
    assert code == 1 and "TOR_SOCKS_IPC_PATH does not answer" in text
    assert bait.contacted() == 0


def test_a_plain_client_says_why_an_onion_server_is_out_of_reach(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dead_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = tmp_path / "c"
    assert veil(capsys, "create-client", str(node))[0] == 0
    onion = "a" * 56 + ".onion"
    ann = {"anonymous-storage-NURLs": [f"pb+tor://{'A' * 43}@{onion}:3457/swiss#v=1"]}
    (node / "private" / "servers.yaml").write_text(
        yaml.safe_dump({"storage": {"v0-" + "b" * 52: {"ann": ann}}})
    )
    monkeypatch.setenv("TOR_SOCKS_PORT", str(dead_port))
    code, text = veil(capsys, "-d", str(node), "status")
    assert code == 1 and "only as an onion service" in text and "does not answer" in text
