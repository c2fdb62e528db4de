"""veil on a private Tor network: onion servers, an onion introducer,
anonymous and plain clients, stream isolation, and leak tests on real traffic.

One grid per module, on the session's Tor network (``tor_network``): the
network's client1 tor hosts the onion services (servers reach it through
``TOR_CONTROL_PORT``/``--tor-control-port``, as a system tor), client0 is the
tor of the veil clients. Connections to the TCP servers are attributed to the
process that made them (``owners.py``): an exit relay, or the veil client.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .owners import OwnerWatcher
from .privnet import StreamRecorder, TorNetwork
from .sniffer import Sniffer
from .veil_nodes import VEIL, Server, VeilNodes, veil

pytestmark = pytest.mark.tor


@dataclass
class Grid:
    nodes: VeilNodes
    introducer: str
    onion: list[Server]
    tcp: list[Server]
    client_env: dict[str, str]
    client_unix_env: dict[str, str]
    net: TorNetwork
    setup_seconds: float

    @property
    def tcp_ports(self) -> set[int]:
        return {p for s in self.tcp if (p := s.tcp_port) is not None}


@pytest.fixture(scope="module")
def grid(tor_network: TorNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    service, user = tor_network.clients[1], tor_network.clients[0]
    server_env = {
        "TOR_SOCKS_PORT": str(service.socks_port),
        "TOR_CONTROL_PORT": str(service.control_port),
    }
    started = time.monotonic()
    nodes = VeilNodes(tmp_path_factory.mktemp("veil-tor"))
    try:
        introducer = nodes.introducer(
            "introducer",
            env={"TOR_SOCKS_IPC_PATH": service.socks_path},
            control=f"unix:{service.control_path}",
        )
        onion = [
            nodes.server(f"onion{i}", listen="tor", env=server_env, introducer=introducer)
            for i in range(2)
        ]
        tcp = [
            nodes.server(
                f"tcp{i}", listen="tcp", env=server_env, hide_ip=False, introducer=introducer
            )
            for i in range(2)
        ]
        yield Grid(
            nodes,
            introducer,
            onion,
            tcp,
            {"TOR_SOCKS_PORT": str(user.socks_port)},
            {"TOR_SOCKS_IPC_PATH": user.socks_path},
            tor_network,
            time.monotonic() - started,
        )
    finally:
        nodes.stop()


def test_anonymous_client_uses_onion_servers_and_an_onion_introducer(
    grid: Grid, tmp_path: Path
) -> None:
    started = time.monotonic()
    client = grid.nodes.client("anon", hide_ip=True, introducer=grid.introducer)
    rows = grid.nodes.wait_connected(client, grid.client_env, 4)
    assert {r["via"] for r in rows} == {"tor"}
    onion_rows = [r for r in rows if r["nickname"].startswith("onion")]
    assert all(r["address"] == "(onion address hidden)" for r in onion_rows)
    data = os.urandom(10 * 1024 * 1024)
    (tmp_path / "f").write_bytes(data)
    t0 = time.monotonic()
    cap = veil("-d", str(client), "put", str(tmp_path / "f"), env=grid.client_env).strip()
    put_s = time.monotonic() - t0
    first_upload = time.monotonic() - started + grid.setup_seconds
    t0 = time.monotonic()
    veil("-d", str(client), "get", cap, str(tmp_path / "back"), env=grid.client_env)
    get_s = time.monotonic() - t0
    assert (tmp_path / "back").read_bytes() == data
    print(
        f"\nTor figures: first upload {first_upload:.1f} s after the grid began; "
        f"10 MiB put {10.49 / put_s:.2f} MB/s, get {10.49 / get_s:.2f} MB/s (2-of-4, CLI)"
    )


def test_plain_client_reaches_onion_servers_through_tor_and_tcp_directly(
    grid: Grid, tmp_path: Path
) -> None:
    client = grid.nodes.client("plain", hide_ip=False, introducer=grid.introducer)
    rows = grid.nodes.wait_connected(client, grid.client_env, 4)
    via = {r["nickname"]: r["via"] for r in rows}
    assert via == {"onion0": "tor", "onion1": "tor", "tcp0": "tcp", "tcp1": "tcp"}
    (tmp_path / "f").write_bytes(b"mixed grid " * 5000)
    with Sniffer() as sniffer:
        cap = veil("-d", str(client), "put", str(tmp_path / "f"), env=grid.client_env).strip()
    veil("-d", str(client), "get", cap, str(tmp_path / "back"), env=grid.client_env)
    assert (tmp_path / "back").read_bytes() == (tmp_path / "f").read_bytes()
    direct = grid.tcp_ports & {s.dport for s in sniffer.syns_to(grid.tcp_ports)}
    assert direct == grid.tcp_ports  # TCP servers were reached directly (from 127.0.0.1)
    assert all(s.src == "127.0.0.1" for s in sniffer.syns_to(grid.tcp_ports))


def test_each_server_has_its_own_circuit(grid: Grid) -> None:
    client = grid.nodes.client("iso", hide_ip=True, introducer=grid.introducer)
    grid.nodes.wait_connected(client, grid.client_env, 4)
    with StreamRecorder(grid.net.clients[0]) as recorder:
        veil("-d", str(client), "status", env=grid.client_env)
        time.sleep(1)
    streams = [s for s in recorder.streams if s.status == "SUCCEEDED"]
    by_user: dict[str, set[str]] = {}
    for s in streams:
        if s.username.startswith("veil:"):
            by_user.setdefault(s.username, set()).add(s.circuit)
    ids = {s.announcement["server_id"] for s in grid.onion + grid.tcp}
    assert {f"veil:{i}" for i in ids} <= set(by_user)  # one username per server
    circuits = [c for user, cs in by_user.items() if user.startswith("veil:v0-") for c in cs]
    assert len(circuits) == len(set(circuits)), by_user  # no two servers share a circuit


def _veil_process(client: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*VEIL, "-d", str(client), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[str, str]:
    """Its output; one that overruns is stopped (it is ours) before the timeout is
    raised, so no client is left running behind the test."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


def test_no_byte_leaves_except_through_tor(grid: Grid, tmp_path: Path) -> None:
    client = grid.nodes.client("leak", hide_ip=True, introducer=grid.introducer)
    grid.nodes.wait_connected(client, grid.client_env, 4)
    data = os.urandom(300_000)
    (tmp_path / "f").write_bytes(data)
    pids = grid.net.exit_pids()
    with Sniffer() as sniffer, OwnerWatcher(grid.tcp_ports, pids) as owners:
        put = _veil_process(client, grid.client_env, "put", str(tmp_path / "f"))
        owners.pids[put.pid] = "veil client"
        cap, err = _finish(put)
        assert put.returncode == 0, err
        get = _veil_process(client, grid.client_env, "get", cap.strip(), str(tmp_path / "back"))
        owners.pids[get.pid] = "veil client"
        _, err = _finish(get)
        assert get.returncode == 0, err
    assert (tmp_path / "back").read_bytes() == data
    to_servers = sniffer.syns_to(grid.tcp_ports)
    assert to_servers, "the TCP servers were used (through Tor exits)"
    makers = {owners.owner_of.get(s.sport, "unknown") for s in to_servers}
    assert makers and all(m.startswith("exit") for m in makers), makers
    assert sniffer.dns == []
    # and with no network at all but Tor's unix socket, the same works:
    done = subprocess.run(
        ["unshare", "--net", *VEIL, "-d", str(client), "get", cap.strip(), str(tmp_path / "again")],
        env={**os.environ, **grid.client_unix_env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "again").read_bytes() == data


def test_with_tor_stopped_the_client_refuses_and_servers_see_nothing(
    grid: Grid, tmp_path: Path
) -> None:
    client = grid.nodes.client("stopped", hide_ip=True, introducer=grid.introducer)
    grid.nodes.wait_connected(client, grid.client_env, 4)  # it knows the servers
    (tmp_path / "f").write_bytes(b"never sent")
    stopped = {"TOR_SOCKS_IPC_PATH": str(tmp_path / "tor-was-here.sock")}
    with Sniffer() as sniffer:
        done = subprocess.run(
            [*VEIL, "-d", str(client), "put", str(tmp_path / "f")],
            env={k: v for k, v in os.environ.items() if not k.startswith("TOR_")} | stopped,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "does not answer" in done.stderr and "Traceback" not in done.stderr
    assert sniffer.syns_to(grid.tcp_ports) == [] and sniffer.dns == []


def _processes_using(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(path).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_node_launches_its_own_tor_when_told_to(grid: Grid, tmp_path: Path) -> None:
    join = tmp_path / "join.torrc"
    join.write_text(grid.net.joining_torrc())  # the test network instead of the real one
    server = grid.nodes.server(
        "launcher",
        listen="tor",
        env={},  # no TOR_* variables and no system tor: veil starts one
        config={"tor.launch": "true", "tor.launch.torrc_extra": str(join)},
    )
    torrc = server.path / "private" / "torrc"
    assert _processes_using(torrc), "a private tor runs"
    client = grid.nodes.client("with-launcher", hide_ip=True, servers=[server, *grid.onion])
    rows = grid.nodes.wait_connected(client, grid.client_env, 3)
    assert any(r["nickname"] == "launcher" and r["connected"] for r in rows)
    server.process.terminate()
    assert server.process.wait(30) == 0
    deadline = time.monotonic() + 20
    while _processes_using(torrc) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_using(torrc), "the launched tor stops with the node"


def test_a_tahoe_client_uses_veil_onion_servers_through_tor(grid: Grid, tmp_path: Path) -> None:
    """Tahoe 1.20 reaches veil's onion storage servers (pb+tor NURLs) with its own
    Tor support (txtorcon, through the test network's client tor), and the file
    it stores there is read back by an anonymous veil client."""
    from tests.interop.tahoe_harness import TahoeNode, tahoe_executable

    servers = {s.announcement["server_id"]: s.announcement["ann"] for s in grid.onion}
    tahoe = TahoeNode.create_client(
        tahoe_executable(), tmp_path / "tahoe", needed=1, happy=2, total=2, servers=servers
    )
    control = grid.net.clients[0].control_port
    cfg = tahoe.path / "tahoe.cfg"
    # [connections] tcp = tor is needed: with the default (tcp), Tahoe 1.20 builds a
    # plain agent even for pb+tor NURLs and looks the .onion name up in DNS
    cfg.write_text(
        cfg.read_text()
        + f"\n[tor]\nenabled = true\ncontrol.port = tcp:127.0.0.1:{control}\n"
        + "\n[connections]\ntcp = tor\n"
    )
    tahoe.start()
    try:
        started = time.monotonic()
        try:
            tahoe.wait_ready(connected_servers=2, timeout=90)
        except Exception as exc:
            statuses = [
                (s.get("nickname"), s.get("connection_status"))
                for s in tahoe.welcome().get("servers", [])
            ]
            raise AssertionError(f"Tahoe did not connect: {statuses}") from exc
        ready = time.monotonic() - started
        data = os.urandom(10 * 1024 * 1024)
        t0 = time.monotonic()
        cap = tahoe.put(data)
        put_s = time.monotonic() - t0
        t0 = time.monotonic()
        assert tahoe.get(cap) == data
        get_s = time.monotonic() - t0
        print(
            f"\nTahoe client over Tor to veil onion servers: ready in {ready:.1f} s; "
            f"10 MiB put {10.49 / put_s:.2f} MB/s, get {10.49 / get_s:.2f} MB/s (1-of-2, web API)"
        )
    finally:
        tahoe.stop()
    client = grid.nodes.client("reads-tahoe", hide_ip=True, servers=grid.onion)
    grid.nodes.wait_connected(client, grid.client_env, 2)
    got = subprocess.run(
        [*VEIL, "-d", str(client), "get", cap],
        env={**os.environ, **grid.client_env},
        capture_output=True,
        timeout=180,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout == data
