"""veil on the private I2P network: I2P storage servers and an I2P introducer,
an anonymous client that stores and fetches through them, and leak tests on
real traffic.

The nodes are made and run with the command line, each ``veil run`` its own
process (stopped by PID). Every node uses a non-floodfill router's SAM bridge
through the host's 127.0.0.1 (``relay.py``), as a node with a local router
would. i2pd 2.45 answers ``SESSION CREATE`` after 20 s, so nodes are started
together and each command waits about 20 s per hop of sessions it needs (a
new client: one for the introducer, then one per server, in parallel; a client
that heard the servers before makes their sessions while it asks the introducer).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.tor.privnet import TorNetwork
from tests.tor.sniffer import Sniffer
from tests.tor.veil_nodes import SHARES, VEIL, veil

from .peers import PeerWatcher
from .privnet import I2PNetwork

pytestmark = [pytest.mark.i2p, pytest.mark.integration]


def _start(path: Path, ready: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = open(path / "run.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [*VEIL, "run", str(path)],
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return proc


def _wait(procs: list[tuple[Path, subprocess.Popen[bytes], Path]], timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    for path, proc, ready in procs:
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{path.name} did not start:\n{(path / 'run.log').read_text()}"
                )
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Grid:
    net: I2PNetwork
    root: Path
    introducer: str
    servers: list[Path]
    processes: list[subprocess.Popen[bytes]]
    client_sam: str
    setup_seconds: float

    def sam_ports(self) -> set[int]:
        return {self.net.sam_port(i) for i in self.net.client_routers}


@pytest.fixture(scope="module")
def grid(i2p_network: I2PNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("veil-i2p")
    routers = i2p_network.client_routers
    sam = [f"tcp:127.0.0.1:{i2p_network.sam_port(r)}" for r in routers]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        intro = root / "introducer"
        veil(
            "create-introducer", "--hide-ip", "--listen=i2p", f"--i2p-sam-port={sam[0]}", str(intro)
        )
        processes.append(_start(intro, intro / "private" / "introducer.furl"))
        _wait([(intro, processes[0], intro / "private" / "introducer.furl")])
        furl = (intro / "private" / "introducer.furl").read_text().strip()
        assert furl.startswith("pb+i2p://") and ".b32.i2p:3457/" in furl
        servers, waiting = [], []
        for i in range(3):
            path = root / f"i2p{i}"
            veil(
                "create-node",
                "--hide-ip",
                "--listen=i2p",
                f"--i2p-sam-port={sam[i % 2]}",
                f"--introducer={furl}",
                "--nickname",
                f"i2p{i}",
                *SHARES,
                str(path),
            )
            ready = path / "private" / "announcement.yaml"
            processes.append(_start(path, ready))
            waiting.append((path, processes[-1], ready))
            servers.append(path)
        _wait(waiting)
        state = intro / "private" / "introducer-state.json"
        deadline = time.monotonic() + 120  # announced: a retry after a failed try takes ~40 s
        while not state.exists() or len(json.loads(state.read_text() or "[]")) < len(servers):
            assert time.monotonic() < deadline, "the servers were not announced in time"
            time.sleep(0.5)
        yield Grid(i2p_network, root, furl, servers, processes, sam[2], time.monotonic() - started)
    finally:
        for proc in processes:
            _stop(proc)


def _client(grid: Grid, name: str) -> Path:
    path = grid.root / name
    veil(
        "create-client",
        "--hide-ip",
        "--networks=i2p",
        f"--i2p-sam-port={grid.client_sam}",
        f"--introducer={grid.introducer}",
        *SHARES,
        str(path),
    )
    return path


UNREACHED = "the I2P destination cannot be reached"


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _veil_process(client: Path, owners: PeerWatcher, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*VEIL, "-d", str(client), *args],
        env={k: v for k, v in os.environ.items() if not k.startswith("TOR_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    owners.pids.add(proc.pid)
    return proc


def _veil(
    client: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*VEIL, "-d", str(client), *args],
        env={k: v for k, v in os.environ.items() if not k.startswith("TOR_")} | (env or {}),
        capture_output=True,
        timeout=240,
    )


def test_an_anonymous_client_stores_and_fetches_over_i2p_only(grid: Grid, tmp_path: Path) -> None:
    """Through I2P servers found at an I2P introducer; meanwhile every packet
    is watched: the client's only connections go to SAM bridges, no DNS."""
    client = _client(grid, "anon")
    text = (client / "tahoe.cfg").read_text()
    assert "[tor]\nenabled = false" in text and "tcp = disabled" in text
    data = os.urandom(10 * 1024 * 1024)
    (tmp_path / "f").write_bytes(data)
    with Sniffer() as sniffer, PeerWatcher() as owners:
        t0 = time.monotonic()
        put = _veil_process(client, owners, "put", str(tmp_path / "f"))
        cap, err = put.communicate(timeout=240)
        if put.returncode != 0 and UNREACHED in err:
            # The network is minutes old: a server's LeaseSet was still not found
            # when the client's lookups for it (retried for the connect time) gave
            # up (seen once in CI). The put said so in one line; it is run again.
            put = _veil_process(client, owners, "put", str(tmp_path / "f"))
            cap, err = put.communicate(timeout=240)
        put_s = time.monotonic() - t0
        assert put.returncode == 0, err
        first_upload = grid.setup_seconds + put_s
        t0 = time.monotonic()
        got = _veil_process(client, owners, "get", cap.strip(), str(tmp_path / "back"))
        _, err = got.communicate(timeout=240)
        get_s = time.monotonic() - t0
        assert got.returncode == 0, err
    assert (tmp_path / "back").read_bytes() == data
    assert owners.peers == {f"127.0.0.1:{_port(grid.client_sam)}"}  # its SAM bridge only
    assert sniffer.syns_to({_port(grid.client_sam)}), "the capture saw the client's connections"
    assert sniffer.dns == []
    rows = _veil(client, "status", "--json")
    assert b"(i2p address hidden)" in rows.stdout and b".b32.i2p" not in rows.stdout
    print(
        f"\nI2P figures: first upload {first_upload:.1f} s after the grid began "
        f"(network up before: see above); 10 MiB put {10.49 / put_s:.2f} MB/s, "
        f"get {10.49 / get_s:.2f} MB/s (2-of-4 on 3 servers, CLI, 3-hop tunnels, "
        "includes ~40 s of SAM session set-up per command)"
    )


def test_with_sam_gone_the_client_refuses_and_servers_see_nothing(
    grid: Grid, tmp_path: Path
) -> None:
    client = _client(grid, "nosam")
    veil("-d", str(client), "config", "set", "i2p.sam.port", "tcp:127.0.0.1:9")
    (tmp_path / "f").write_bytes(b"never sent")
    with Sniffer() as sniffer:
        done = _veil(client, "put", str(tmp_path / "f"))
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "SAM bridge at 127.0.0.1:9" in err and "will not start" in err
    assert "Traceback" not in err
    assert [s for s in sniffer.seen if s.proto == "tcp-syn" and s.dport in grid.sam_ports()] == []
    assert sniffer.dns == []


def test_a_client_with_both_networks_uses_a_mixed_grid(
    grid: Grid, tor_network: TorNetwork, tmp_path: Path
) -> None:
    """Tor onion, I2P, TCP and a tor,i2p server (reachable both ways), from a
    client that does not hide its address and has Tor and I2P: each server is
    reached the way it can be, a file is stored across all and read back."""
    service, user = tor_network.clients[1], tor_network.clients[0]
    tor_env = {"TOR_SOCKS_PORT": str(service.socks_port)}
    control = f"--tor-control-port=tcp:127.0.0.1:{service.control_port}"
    sam = f"--i2p-sam-port=tcp:127.0.0.1:{grid.net.sam_port(grid.net.client_routers[1])}"
    made = {
        "onion": ["--hide-ip", "--listen=tor", control],
        "plain": ["--listen=tcp"],
        "both": ["--hide-ip", "--listen=tor,i2p", control, sam],
    }
    waiting, processes = [], []
    for name, options in made.items():
        path = tmp_path / name
        veil("create-node", *options, "--nickname", name, *SHARES, str(path))
        ready = path / "private" / "announcement.yaml"
        proc = _start(path, ready, tor_env)
        processes.append(proc)
        waiting.append((path, proc, ready))
    try:
        _wait(waiting)
        client = tmp_path / "mixed"
        veil(
            "create-client",
            "--networks=tor,i2p",
            f"--i2p-sam-port={grid.client_sam}",
            *SHARES,
            str(client),
        )
        entries = {}
        for path in [grid.servers[0], *(tmp_path / n for n in made)]:
            doc = yaml.safe_load((path / "private" / "announcement.yaml").read_text())
            entries[doc["server_id"]] = {"ann": doc["ann"]}
        (client / "private" / "servers.yaml").write_text(yaml.safe_dump({"storage": entries}))
        client_env = {"TOR_SOCKS_PORT": str(user.socks_port)}
        rows = json.loads(veil("-d", str(client), "status", "--json", env=client_env))["servers"]
        via = {r["nickname"]: (r["via"], r["connected"]) for r in rows}
        assert via == {
            "i2p0": ("i2p", True),
            "onion": ("tor", True),
            "plain": ("tcp", True),
            "both": ("tor", True),  # an onion and an I2P destination: Tor is tried first
        }, via
        both = next(e["ann"] for e in entries.values() if e["ann"]["nickname"] == "both")
        schemes = sorted(n.split("://")[0] for n in both["anonymous-storage-NURLs"])
        assert schemes == ["pb+i2p", "pb+tor"]
        assert ",i2p:" in both["anonymous-storage-FURL"]
        data = os.urandom(1_000_000)
        (tmp_path / "f").write_bytes(data)
        cap = veil("-d", str(client), "put", str(tmp_path / "f"), env=client_env).strip()
        veil("-d", str(client), "get", cap, str(tmp_path / "back"), env=client_env)
        assert (tmp_path / "back").read_bytes() == data
    finally:
        for proc in processes:
            _stop(proc)
