"""What a veil node asks of Tor's control port, seen on the wire.

A relay between the node and the network's tor records every line the node
sends. The node may only log in, add its onion service and remove it again,
and every command must pass the onion-grater profile we ship, so a filtered
control port (Tails, Whonix) lets veil do its job.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .privnet import TorNetwork
from .veil_nodes import VeilNodes

pytestmark = pytest.mark.tor
PROFILE = Path(__file__).parents[2] / "packaging" / "onion-grater" / "40_veil.yml"


class Relay:
    """127.0.0.1:port → ``target``; records the lines sent towards the target."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.lines: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=30)
            self._sockets += [conn, upstream]
            for src, dst, record in ((conn, upstream, True), (upstream, conn, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, record), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        buffer = b""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if record:
                    buffer += data
                    while b"\r\n" in buffer:
                        line, buffer = buffer.split(b"\r\n", 1)
                        self.lines.append(line.decode("ascii", "replace"))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        for s in self._sockets:
            s.close()


@pytest.fixture
def relay(tor_network: TorNetwork) -> Iterator[Relay]:
    r = Relay(("127.0.0.1", tor_network.clients[1].control_port))
    yield r
    r.close()


def _allowed(command: str, args: str, profile: list[dict[str, object]]) -> bool:
    rules = profile[0]["commands"]
    assert isinstance(rules, dict)
    for rule in rules.get(command, []):
        pattern = rule["pattern"] if isinstance(rule, dict) else rule
        if re.fullmatch(pattern, args):
            return True
    return False


def test_a_node_only_adds_and_removes_its_onion(
    relay: Relay, tor_network: TorNetwork, tmp_path: Path
) -> None:
    nodes = VeilNodes(tmp_path)
    socks = {"TOR_SOCKS_PORT": str(tor_network.clients[1].socks_port)}
    try:
        server = nodes.server("s", listen="tor", env=socks, control=f"tcp:127.0.0.1:{relay.port}")
        recorded = (server.path / "tahoe.cfg").read_text().split("tor:")[1].split(":")[0]
        assert any(recorded in n for n in server.announcement["ann"]["anonymous-storage-NURLs"])
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
    finally:
        nodes.stop()
    verbs = [line.split(" ", 1)[0] for line in relay.lines]
    assert verbs == ["PROTOCOLINFO", "AUTHCHALLENGE", "AUTHENTICATE", "ADD_ONION", "DEL_ONION"]
    profile = yaml.safe_load(PROFILE.read_text())
    for line in relay.lines[3:]:
        command, _, args = line.partition(" ")
        assert _allowed(command, args, profile), line
    assert relay.lines[4] == "DEL_ONION " + recorded.removesuffix(".onion")
