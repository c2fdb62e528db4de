"""veil's SOCKS tunnels, control connection and onion keys against real tor."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.adapters.net.socks import open_tunnel
from veil.adapters.net.tor import OnionService, TorProvider
from veil.adapters.net.tor_control import TorControl
from veil.errors import ServerUnavailable
from veil.formats import tor_control as tc
from veil.formats.onion import OnionKey
from veil.formats.tor_settings import Endpoint

from .owners import OwnerWatcher
from .privnet import StreamRecorder, TorNetwork

pytestmark = pytest.mark.tor


class Echo:
    """A TCP echo server on 127.0.0.1 that records its peers' addresses."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.peers: list[tuple[str, int]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append((peer[0], peer[1]))
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo()
    yield e
    e.sock.close()


async def _roundtrip(
    proxy: Endpoint, port: int, key: str, watcher: OwnerWatcher | None = None
) -> bytes:
    creds = TorProvider(proxy).credentials(key)
    sock = await open_tunnel(proxy, "127.0.0.1", port, creds)
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"ping " + key.encode())
    await writer.drain()
    data = await reader.readexactly(5 + len(key))
    if watcher is not None:
        watcher.sample()  # while the connection is open: who holds its far end?
    writer.close()
    return data


async def test_tunnels_over_tcp_and_unix_leave_through_the_exits(
    tor_network: TorNetwork, echo: Echo
) -> None:
    client = tor_network.clients[0]
    tcp = Endpoint("127.0.0.1", client.socks_port)
    unix = Endpoint(path=client.socks_path)
    watcher = OwnerWatcher({echo.port}, tor_network.exit_pids())
    assert await _roundtrip(tcp, echo.port, "a", watcher) == b"ping a"
    assert await _roundtrip(unix, echo.port, "b", watcher) == b"ping b"
    assert len(echo.peers) == 2
    for _, port in echo.peers:  # each connection was made by an exit relay's process
        assert watcher.owner_of.get(port, "?").startswith("exit"), (port, watcher.owner_of)


async def test_each_isolation_key_gets_its_own_circuit(tor_network: TorNetwork, echo: Echo) -> None:
    proxy = Endpoint("127.0.0.1", tor_network.clients[0].socks_port)
    with StreamRecorder(tor_network.clients[0]) as recorder:
        for key in ("server-1", "server-2", "server-1"):
            await _roundtrip(proxy, echo.port, key)
    # only our streams: tor makes its own now and then (directory fetches, no user name)
    ok = [s for s in recorder.streams if s.status == "SUCCEEDED" and s.username.startswith("veil:")]
    circuit = {s.username: s.circuit for s in ok}
    assert len(ok) == 3
    assert circuit["veil:server-1"] != circuit["veil:server-2"]
    assert {s.circuit for s in ok if s.username == "veil:server-1"} == {circuit["veil:server-1"]}


async def test_tor_errors_are_plain_words(tor_network: TorNetwork) -> None:
    proxy = Endpoint("127.0.0.1", tor_network.clients[0].socks_port)
    creds = TorProvider(proxy).credentials("x")
    missing = OnionKey.from_seed(os.urandom(32)).address  # never published
    with pytest.raises(ServerUnavailable, match=r"descriptor not found|unreachable"):
        await open_tunnel(proxy, missing, 3457, creds)
    with pytest.raises(ServerUnavailable, match="does not answer"):
        await open_tunnel(Endpoint("127.0.0.1", 1), "example.org", 80, creds)


async def test_our_onion_key_gives_the_address_tor_computes(tor_network: TorNetwork) -> None:
    key = OnionKey.from_seed(os.urandom(32))
    control = Endpoint(path=tor_network.clients[1].control_path)
    service = await OnionService.start(control, key.to_blob(), [(3457, 9)])
    try:
        assert service.address == key.address
        assert service.control.sent == [
            "PROTOCOLINFO",
            "AUTHCHALLENGE",
            "AUTHENTICATE",
            "ADD_ONION",
        ]
    finally:
        await service.stop()


async def test_a_wrong_cookie_is_refused(tor_network: TorNetwork, tmp_path: Path) -> None:
    fake = tmp_path / "cookie"
    fake.write_bytes(os.urandom(32))
    with pytest.raises(tc.ControlError, match="does not know our cookie"):
        await TorControl.connect(
            Endpoint("127.0.0.1", tor_network.clients[1].control_port), cookie_file=str(fake)
        )
