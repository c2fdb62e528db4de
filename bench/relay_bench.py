"""Benchmark a veil relay on loopback: MB/s of a ``veil get`` directly and through a relay.

One storage node (1-of-1 encoding, so every byte of the file crosses the
relay once), one ``veil relay``, and two clients: one that knows only the
server's own address, one that knows only the relay's port for it. The file
is put once; each client then gets it ``--runs`` times and the best run is
reported, with the machine's load average. Not a test: run it by hand,
``.venv/bin/python bench/relay_bench.py [--size-mib 100] [--runs 1]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
ONE = ["--shares-needed", "1", "--shares-happy", "1", "--shares-total", "1"]


def veil(*args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run([*VEIL, *args], input=stdin, capture_output=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"veil {' '.join(args)} failed: {done.stderr.decode()}")
    return done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], log: Path, ready: Any) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([*VEIL, *args], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{args[0]} did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc


def client(root: Path, name: str, server_id: str, ann: dict[str, Any], nurl: str) -> Path:
    path = root / name
    veil("create-client", *ONE, str(path))
    entry = {**ann, "anonymous-storage-NURLs": [nurl]}
    servers = {"storage": {server_id: {"ann": entry}}}
    (path / "private" / "servers.yaml").write_text(yaml.safe_dump(servers))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1)
    opts = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="veil-relay-bench-") as tmp:
        root = Path(tmp)
        try:
            shared, own = free_port(), free_port()
            relay_dir = root / "relay"
            veil(
                "relay",
                "create",
                str(relay_dir),
                "--listen",
                f"127.0.0.1:{shared}",
                "--public-host",
                "127.0.0.1",
            )
            ticket = veil("relay", "add-backend", str(relay_dir), "bob", "--port", str(own))
            relay_log = root / "relay.log"
            procs.append(
                start(
                    ["relay", "run", str(relay_dir)],
                    relay_log,
                    lambda: b"relay on" in relay_log.read_bytes(),
                )
            )
            bob = root / "bob"
            veil("create-node", *ONE, str(bob))
            veil("relay", "join", str(bob), "r", stdin=ticket)
            ann_file = bob / "private" / "announcement.yaml"
            procs.append(start(["run", str(bob)], root / "bob.log", ann_file.exists))
            doc = yaml.safe_load(ann_file.read_text())
            via_relay = doc["ann"]["anonymous-storage-NURLs"][0]
            port = yaml.safe_load(veil("-d", str(bob), "config", "get", "storage.port"))
            direct = via_relay.replace(f"127.0.0.1:{own}/", f"127.0.0.1:{port}/")
            clients = {
                "direct": client(root, "direct", doc["server_id"], doc["ann"], direct),
                "relay": client(root, "via-relay", doc["server_id"], doc["ann"], via_relay),
            }
            data = os.urandom(opts.size_mib << 20)
            src = root / "file.bin"
            src.write_bytes(data)
            cap = veil("-d", str(clients["direct"]), "put", str(src)).decode().strip()
            digest = hashlib.sha256(data).hexdigest()
            for name, path in clients.items():
                best = float("inf")
                for _ in range(opts.runs):
                    t0 = time.perf_counter()
                    got = veil("-d", str(path), "get", cap)
                    best = min(best, time.perf_counter() - t0)
                    assert hashlib.sha256(got).hexdigest() == digest
                mbs = len(data) / best / 1e6
                print(f"get {opts.size_mib} MiB {name:>6}: {best:6.2f} s  {mbs:7.1f} MB/s")
            print(
                f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
                f"{os.cpu_count()} cores"
            )
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)


if __name__ == "__main__":
    main()
