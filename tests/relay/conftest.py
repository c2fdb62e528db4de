"""One private relay network for the session: two veil relays in their own
namespaces, a storage server ``bob`` behind NAT that keeps tunnels to both,
and helpers to make clients in the clients' namespace. Everything started is
stopped by PID and every namespace deleted at the end
(``VEIL_KEEP_RELAY_TMP=1`` keeps the logs in /tmp/veil-relay-*)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .netns import RelayNet, wait_for

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
SHARED_PORT, BOB_PORT = 4430, 4431
KITE, KITE_PORT = "bob.kite.test", 4440  # bob's name on the Pagekite frontend (relay 3)
ONE_SHARE = ["--shares-needed", "1", "--shares-happy", "1", "--shares-total", "1"]


def veil_in(net: RelayNet, ns: str, *args: str, input: bytes | None = None) -> bytes:
    done = net.run(ns, *VEIL, *args, input=input, timeout=180)
    if done.returncode != 0:
        raise AssertionError(f"veil {' '.join(args)} failed:\n{done.stderr.decode()}")
    return done.stdout


@dataclass
class Grid:
    net: RelayNet
    root: Path
    relay_dirs: list[Path]
    relay_procs: list[Any]
    bob: Path
    bob_proc: Any

    @property
    def announcement(self) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load(
            (self.bob / "private" / "announcement.yaml").read_text()
        )
        return doc

    def start_relay(self, n: int) -> None:
        log = self.root / f"relay{n}.log"
        proc = self.net.popen(
            self.net.relay(n), *VEIL, "relay", "run", str(self.relay_dirs[n - 1]), log=log
        )
        self.relay_procs[n - 1] = proc
        wait_for(
            lambda: b"relay on" in log.read_bytes() or proc.poll() is not None, 30, "the relay"
        )
        if proc.poll() is not None:
            raise AssertionError(f"relay {n} did not start:\n{log.read_text()}")

    def client(self, name: str, nurls: list[str] | None = None) -> Path:
        """A veil client in the clients' namespace that knows bob by ``nurls``
        (default: every NURL bob announces)."""
        path = self.root / name
        veil_in(self.net, self.net.client, "create-client", *ONE_SHARE, str(path))
        doc = self.announcement
        ann = dict(doc["ann"])
        if nurls is not None:
            ann["anonymous-storage-NURLs"] = nurls
        servers = {"storage": {doc["server_id"]: {"ann": ann}}}
        (path / "private" / "servers.yaml").write_text(yaml.safe_dump(servers))
        return path

    def nurl_via(self, host: str, port: int) -> str:
        first = self.announcement["ann"]["anonymous-storage-NURLs"][0]
        head, _, tail = first.partition("@")
        return f"{head}@{host}:{port}/{tail.split('/', 1)[1]}"


@pytest.fixture(scope="package")
def grid() -> Iterator[Grid]:
    root = Path(tempfile.mkdtemp(prefix="veil-relay-", dir="/tmp"))
    net = RelayNet(prefix=f"vr{os.getpid() % 100000}", relays=3)  # relay 3 runs Pagekite
    try:
        net.create()
        net.name_hosts({f"bob.relay{n}.test": net.public_address(n) for n in (1, 2)})
        net.name_hosts({KITE: net.public_address(3)})
        relay_dirs, tickets = [], []
        for n in (1, 2):
            rd = root / f"relay{n}"
            args = ["relay", "create", str(rd), "--listen", f"0.0.0.0:{SHARED_PORT}"]
            veil_in(net, net.relay(n), *args, "--public-host", net.public_address(n))
            add = ["relay", "add-backend", str(rd), "bob", "--port", str(BOB_PORT)]
            tickets.append(veil_in(net, net.relay(n), *add, "--sni", f"bob.relay{n}.test"))
            relay_dirs.append(rd)
        bob = root / "bob"
        veil_in(net, net.backend, "create-node", "--nickname", "bob", *ONE_SHARE, str(bob))
        for n, ticket in zip((1, 2), tickets, strict=True):
            veil_in(net, net.backend, "relay", "join", str(bob), f"r{n}", input=ticket)
        kite = f"pagekite://{KITE}:{KITE_PORT}\n".encode()
        veil_in(net, net.backend, "relay", "join", str(bob), "kite", input=kite)
        g = Grid(net, root, relay_dirs, [None, None], bob, None)
        g.start_relay(1)
        g.start_relay(2)
        g.bob_proc = net.popen(net.backend, *VEIL, "run", str(bob), log=root / "bob.log")
        ann = bob / "private" / "announcement.yaml"
        wait_for(lambda: ann.exists() or g.bob_proc.poll() is not None, 60, "bob")
        if not ann.exists():
            raise AssertionError(f"bob did not start:\n{(root / 'bob.log').read_text()}")
        yield g
    finally:
        net.destroy()
        if not os.environ.get("VEIL_KEEP_RELAY_TMP"):
            shutil.rmtree(root, ignore_errors=True)
