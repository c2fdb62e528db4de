"""The web UI through an onion service (``[node] web.onion``), as Tor Browser
reaches it: Tor Browser sends even 127.0.0.1 through Tor, which refuses it,
so on Tails the gateway is opened at its onion address. A hide-ip client
publishes its gateway through the test network's control port; another tor
client of the network fetches ``veil webopen``'s one-time onion address over
SOCKS5 and gets a session and the status page; the ticket then works no more."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from veil.formats import socks5

from .privnet import TorNetwork
from .veil_nodes import VeilNodes, veil

pytestmark = pytest.mark.tor
REACH_TIMEOUT = 120.0


def _via_tor(socks_port: int, onion: str, request: bytes) -> bytes:
    """One HTTP exchange with ``onion``:80 through Tor's SOCKS port (bounded)."""
    with socket.create_connection(("127.0.0.1", socks_port), timeout=30) as s:
        s.sendall(socks5.GREETING)  # username/password, as veil isolates its streams
        socks5.check_method_reply(s.recv(socks5.METHOD_REPLY_SIZE))
        s.sendall(socks5.auth_request(socks5.Credentials("web-ui-test", "browser")))
        socks5.check_auth_reply(s.recv(socks5.AUTH_REPLY_SIZE))
        s.sendall(socks5.connect_request(onion, 80))
        s.recv(socks5.reply_remaining(s.recv(socks5.REPLY_HEAD_SIZE)))
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _get(socks_port: int, onion: str, path: str, cookie: str = "") -> tuple[str, str]:
    lines = [f"GET {path} HTTP/1.1", f"Host: {onion}", "Connection: close"]
    if cookie:
        lines.append(f"Cookie: veil_ui={cookie}")
    raw = _via_tor(socks_port, onion, ("\r\n".join(lines) + "\r\n\r\n").encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body.decode("utf-8", "replace")


def test_the_ui_opens_at_its_onion_address(tor_network: TorNetwork, tmp_path: Path) -> None:
    service, user = tor_network.clients[1], tor_network.clients[0]
    nodes = VeilNodes(tmp_path)
    client = nodes.client("webui", hide_ip=True)
    veil("-d", str(client), "config", "set", "node.web.port", "tcp:0:interface=127.0.0.1")
    veil("-d", str(client), "config", "set", "node.web.onion", "true")
    env = {"TOR_SOCKS_PORT": str(service.socks_port), "TOR_CONTROL_PORT": str(service.control_port)}
    try:
        nodes.others.append(nodes._run(client, env, client / "private" / "web.onion"))
        printed = veil("-d", str(client), "webopen", "--print-only").splitlines()
        assert printed[0].startswith("http://127.0.0.1:")
        assert printed[1].startswith("in Tor Browser: http://")
        address = printed[1].removeprefix("in Tor Browser: http://")
        onion, _, login = address.partition("/")
        assert onion == (client / "private" / "web.onion").read_text().strip()
        deadline = time.monotonic() + REACH_TIMEOUT
        while True:  # the descriptor takes a few seconds to be published
            try:
                head, _ = _get(user.socks_port, onion, "/ui/static/style.css")
                break
            except (OSError, socks5.SocksError) as exc:
                assert time.monotonic() < deadline, f"the web onion never answered: {exc}"
                time.sleep(2)
        assert head.startswith("HTTP/1.1 200")
        head, _ = _get(user.socks_port, onion, "/" + login)
        assert head.startswith("HTTP/1.1 303"), head
        cookie = head.split("veil_ui=", 1)[1].split(";", 1)[0]
        head, body = _get(user.socks_port, onion, "/", cookie)
        assert head.startswith("HTTP/1.1 200") and "X-Frame-Options: DENY" in head
        assert "<h1>Status</h1>" in body
        again, _ = _get(user.socks_port, onion, "/" + login)
        assert again.startswith("HTTP/1.1 401")
    finally:
        nodes.stop()
