"""veil over I2P beside veil over Tor, on the test suites' private networks.

    .venv/bin/python bench/anonymity_bench.py [--mib 10]

Builds the private I2P network (tests/i2p/privnet.py: six i2pd 2.45 routers in
a network namespace, 3-hop tunnels) and the private Tor network
(tests/tor/privnet.py: ten tor processes on loopback), then on each three
storage servers that hide their IP address (I2P destinations; onion services)
and an anonymous client (``servers.yaml``, 2-of-4 as the tests), and times
with the command line: the first upload after the network was started, a put
and a get of ``--mib`` MiB of random data. Needs root. Prints one line per
network and the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.i2p.privnet import I2PNetwork
from tests.tor.privnet import TorNetwork, free_base_port
from tests.tor.veil_nodes import SHARES, VEIL, Server, VeilNodes, veil


def _timed_put_get(client: Path, env: dict[str, str], data_file: Path) -> tuple[float, float]:
    t0 = time.monotonic()
    cap = veil("-d", str(client), "put", str(data_file), env=env, timeout=600).strip()
    put = time.monotonic() - t0
    t0 = time.monotonic()
    veil("-d", str(client), "get", cap, str(data_file) + ".back", env=env, timeout=600)
    get = time.monotonic() - t0
    assert Path(str(data_file) + ".back").read_bytes() == data_file.read_bytes()
    return put, get


def bench_i2p(root: Path, data_file: Path) -> tuple[float, float, float]:
    started = time.monotonic()
    net = I2PNetwork.create(root / "i2pnet")
    nodes = VeilNodes(root / "i2p")
    nodes.root.mkdir()
    try:
        net.start()
        sams = [f"--i2p-sam-port=tcp:127.0.0.1:{net.sam_port(r)}" for r in net.client_routers]
        procs = []
        for i in range(3):  # started together: each waits ~20 s for its tunnels
            path = nodes.root / f"i2p{i}"
            veil("create-node", "--hide-ip", "--listen=i2p", sams[i % 2], *SHARES, str(path))
            log = open(path / "run.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(
                (path, subprocess.Popen([*VEIL, "run", str(path)], stdout=log, stderr=log))
            )
            log.close()
        for path, proc in procs:
            while not (path / "private" / "announcement.yaml").exists():
                assert proc.poll() is None, (path / "run.log").read_text()
                time.sleep(0.2)
            nodes.servers.append(Server(path, proc))
        client = nodes.root / "anon"
        veil("create-client", "--hide-ip", "--networks=i2p", sams[2], *SHARES, str(client))
        entries = {
            s.announcement["server_id"]: {"ann": s.announcement["ann"]} for s in nodes.servers
        }
        (client / "private" / "servers.yaml").write_text(yaml.safe_dump({"storage": entries}))
        put, get = _timed_put_get(client, {}, data_file)
        return time.monotonic() - started - get, put, get
    finally:
        nodes.stop()
        net.stop()


def bench_tor(root: Path, data_file: Path) -> tuple[float, float, float]:
    started = time.monotonic()
    net = TorNetwork.create(root / "tornet", free_base_port())
    nodes = VeilNodes(root / "tor")
    nodes.root.mkdir()
    try:
        net.start(owner_pid=os.getpid())
        net.wait_ready(180)
        service, user = net.clients[1], net.clients[0]
        env = {
            "TOR_SOCKS_PORT": str(service.socks_port),
            "TOR_CONTROL_PORT": str(service.control_port),
        }
        for i in range(3):
            nodes.server(f"onion{i}", listen="tor", env=env)
        client = nodes.client("anon", hide_ip=True, servers=nodes.servers)
        client_env = {"TOR_SOCKS_PORT": str(user.socks_port)}
        nodes.wait_connected(client, client_env, 3)
        put, get = _timed_put_get(client, client_env, data_file)
        return time.monotonic() - started - get, put, get
    finally:
        nodes.stop()
        net.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("anonymity_bench: needs root (network namespaces, the Tor network)")
    root = Path(tempfile.mkdtemp(prefix="veil-anon-bench-", dir="/tmp"))
    size = args.mib * 1024 * 1024
    data_file = root / "data"
    data_file.write_bytes(os.urandom(size))
    print(f"load before: {os.getloadavg()}; {os.cpu_count()} cores; {args.mib} MiB, 2-of-4")
    try:
        for name, run in (("i2p", bench_i2p), ("tor", bench_tor)):
            first, put, get = run(root, data_file)
            mb = size / 1e6
            print(
                f"{name}: first upload done {first:.1f} s after the network was started; "
                f"put {mb / put:.2f} MB/s ({put:.1f} s), get {mb / get:.2f} MB/s ({get:.1f} s)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
