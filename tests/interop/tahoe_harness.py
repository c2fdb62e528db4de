"""Real Tahoe-LAFS 1.20 nodes on loopback, for live interoperability tests.

``scripts/install-tahoe.sh`` installs Tahoe into its own cached virtualenv.
``TahoeNode`` creates a storage or client node with ``tahoe create-node`` /
``create-client``, runs it with ``tahoe run --allow-stdin-close`` in its own
process group, and stops it by PID. ``storage_announcement`` builds the
``servers.yaml`` entry of a Tahoe storage node (NURL from its certificate and
the swissnum of its storage fURL), so veil clients can use Tahoe servers and
Tahoe clients can be pointed at veil servers without an introducer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from veil.adapters.tls import spki_hash_of_pem
from veil.formats import base32
from veil.formats.nurl import NURL, parse_furl

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def tahoe_executable() -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-tahoe.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return out.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TahoeNode:
    tahoe: str
    path: Path
    webport: int
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def create_storage(cls, tahoe: str, path: Path) -> TahoeNode:
        port, webport = free_port(), free_port()
        subprocess.run(
            [
                tahoe,
                "create-node",
                "--listen=tcp",
                f"--port=tcp:{port}:interface=127.0.0.1",
                f"--location=tcp:127.0.0.1:{port}",
                f"--webport=tcp:{webport}:interface=127.0.0.1",
                "--nickname",
                path.name,
                str(path),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cfg = (path / "tahoe.cfg").read_text().replace("reserved_space = 1G", "reserved_space = 0")
        (path / "tahoe.cfg").write_text(cfg)
        return cls(tahoe, path, webport, port)

    @classmethod
    def create_client(
        cls,
        tahoe: str,
        path: Path,
        *,
        needed: int,
        happy: int,
        total: int,
        servers: dict[str, dict[str, Any]],
        convergence: bytes | None = None,
    ) -> TahoeNode:
        webport = free_port()
        subprocess.run(
            [
                tahoe,
                "create-client",
                f"--webport=tcp:{webport}:interface=127.0.0.1",
                f"--shares-needed={needed}",
                f"--shares-happy={happy}",
                f"--shares-total={total}",
                str(path),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        doc = {"storage": {sid: {"ann": ann} for sid, ann in servers.items()}}
        (path / "private" / "servers.yaml").write_text(yaml.safe_dump(doc))
        if convergence is not None:
            (path / "private" / "convergence").write_text(base32.b2a(convergence) + "\n")
        return cls(tahoe, path, webport)

    def start(self) -> None:
        log = open(self.path / "run.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.tahoe, "run", "--allow-stdin-close", str(self.path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.webport}"

    def welcome(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/?t=json", timeout=5) as r:
            return dict(json.load(r))

    def wait_ready(self, connected_servers: int = 0) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"tahoe node {self.path} exited: see {self.path}/run.log")
            try:
                servers = self.welcome().get("servers", [])
                up = [
                    s
                    for s in servers
                    if s.get("connection_status", "").lower().startswith("connected")
                ]
                if len(up) >= connected_servers:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tahoe node {self.path} not ready in {START_TIMEOUT}s")
            time.sleep(0.2)

    def put(self, data: bytes) -> str:
        req = urllib.request.Request(self.url + "/uri", data=data, method="PUT")
        with urllib.request.urlopen(req, timeout=120) as r:
            return str(r.read().decode().strip())

    def get(self, cap: str) -> bytes:
        with urllib.request.urlopen(f"{self.url}/uri/{cap}", timeout=120) as r:
            return bytes(r.read())

    def check(self, cap: str, *, verify: bool = True) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.url}/uri/{cap}?t=check&verify={'true' if verify else 'false'}&output=JSON",
            data=b"",
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=120) as r:
            return dict(json.load(r))


def storage_announcement(node: TahoeNode) -> tuple[str, dict[str, Any]]:
    """(server id, ann) for a Tahoe storage node, as its announcement carries them."""
    furl_text = (node.path / "private" / "storage.furl").read_text().strip()
    furl = parse_furl(furl_text)
    pem = (node.path / "private" / "node.pem").read_bytes()
    nurl = NURL("pb", spki_hash_of_pem(pem), "127.0.0.1", node.port, furl.swissnum)
    pubkey = (node.path / "node.pubkey").read_text().strip().removeprefix("pub-v0-")
    ann = {
        "nickname": node.path.name,
        "anonymous-storage-FURL": furl_text,
        "anonymous-storage-NURLs": [nurl.to_string()],
        "permutation-seed-base32": (node.path / "permutation-seed").read_text().strip(),
    }
    return "v0-" + pubkey, ann
