"""A storage server that hides its IP address and is reached only through a
veil relay: its tunnels go through the private Tor network, so every
connection the relay receives comes from a Tor exit, and a plain client puts
and gets a file through the relay."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .owners import OwnerWatcher
from .privnet import TorNetwork
from .veil_nodes import VEIL, veil

pytestmark = pytest.mark.tor
ONE = ["--shares-needed", "1", "--shares-happy", "1", "--shares-total", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    args: list[str], log: Path, env: dict[str, str], ready: Path | str
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*VEIL, *args], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    deadline = time.monotonic() + 90
    while not (ready.exists() if isinstance(ready, Path) else ready.encode() in log.read_bytes()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{args[0]} did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_a_hidden_server_reached_only_through_a_relay(
    tor_network: TorNetwork, tmp_path: Path
) -> None:
    shared, own = _free_port(), _free_port()
    relay_dir = tmp_path / "relay"
    veil(
        "relay",
        "create",
        str(relay_dir),
        "--listen",
        f"127.0.0.1:{shared}",
        "--public-host",
        "127.0.0.1",
    )
    ticket = veil("relay", "add-backend", str(relay_dir), "hidden", "--port", str(own))
    server = tmp_path / "hidden"
    veil("create-node", "--hide-ip", "--listen", "none", *ONE, str(server))
    done = subprocess.run(
        [
            *VEIL,
            "relay",
            "join",
            str(server),
            "r",
        ],
        input=ticket,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    veil("-d", str(server), "config", "set", "storage.enabled", "true")
    env = {"TOR_SOCKS_PORT": str(tor_network.clients[1].socks_port)}
    procs = []
    try:
        procs.append(
            _start(["relay", "run", str(relay_dir)], tmp_path / "relay.log", {}, "relay on")
        )
        ann_file = server / "private" / "announcement.yaml"
        node = _start(["run", str(server)], tmp_path / "server.log", env, ann_file)
        procs.append(node)
        deadline = time.monotonic() + 90
        while b"tunnels open" not in (tmp_path / "server.log").read_bytes():
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        watcher = OwnerWatcher({shared}, {**tor_network.exit_pids(), node.pid: "server"})
        watcher.sample()  # the idle tunnels are open: who holds their far end?
        assert watcher.owner_of and all(n.startswith("exit") for n in watcher.owner_of.values()), (
            watcher.owner_of
        )
        doc = yaml.safe_load(ann_file.read_text())
        nurls = doc["ann"]["anonymous-storage-NURLs"]
        assert [n.split("@")[1].split("/")[0] for n in nurls] == [
            f"127.0.0.1:{own}"
        ]  # only the relay
        client = tmp_path / "client"
        veil("create-client", *ONE, str(client))
        servers = {"storage": {doc["server_id"]: {"ann": doc["ann"]}}}
        (client / "private" / "servers.yaml").write_text(yaml.safe_dump(servers))
        data = os.urandom(1 << 20)
        (tmp_path / "f").write_bytes(data)
        cap = veil("-d", str(client), "put", str(tmp_path / "f"), timeout=120).strip()
        got = subprocess.run(
            [*VEIL, "-d", str(client), "get", cap], capture_output=True, timeout=120
        )
        assert got.returncode == 0 and got.stdout == data
    finally:
        for proc in reversed(procs):
            _stop(proc)
