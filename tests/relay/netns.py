"""Private networks of network namespaces for the relay tests (root only).

``RelayNet`` makes one namespace for clients, one for the storage server
behind NAT and one per relay, each relay joined to the clients by one veth
pair and to the backend by another:

    client 10.80.R.2 ──veth── 10.80.R.1 relay R 10.81.R.1 ──veth── 10.81.R.2 backend

No namespace forwards packets, and the client's only routes are its own
links, so nothing in the client's namespace can reach the backend's; the
backend reaches each relay's public address through its own link (outward
only, as from behind a NAT). ``/etc/netns/CLIENT/hosts`` names the relays
for SNI (``ip netns exec`` mounts it over /etc/hosts). Processes started
with ``popen`` are recorded and stopped by PID; ``destroy`` deletes exactly
the namespaces and files this object made.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=20)


@dataclass
class RelayNet:
    prefix: str
    relays: int
    made: list[str] = field(default_factory=list)  # namespaces, in the order made
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> str:
        return f"{self.prefix}c"

    @property
    def backend(self) -> str:
        return f"{self.prefix}b"

    def relay(self, n: int) -> str:
        return f"{self.prefix}r{n}"

    @staticmethod
    def public_address(n: int) -> str:
        """The relay's address on the clients' side (what tickets announce)."""
        return f"10.80.{n}.1"

    @staticmethod
    def backend_address(n: int) -> str:
        return f"10.81.{n}.2"

    def create(self) -> None:
        if os.geteuid() != 0:
            raise AssertionError("the relay tests build network namespaces and must run as root")
        for ns in (self.client, self.backend, *map(self.relay, range(1, self.relays + 1))):
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        for n in range(1, self.relays + 1):
            self._link(self.client, f"10.80.{n}.2", self.relay(n), f"10.80.{n}.1", f"c{n}")
            self._link(self.backend, f"10.81.{n}.2", self.relay(n), f"10.81.{n}.1", f"b{n}")
            _ip("-n", self.backend, "route", "add", f"10.80.{n}.1/32", "via", f"10.81.{n}.1")

    def _link(self, ns_a: str, addr_a: str, ns_b: str, addr_b: str, tag: str) -> None:
        a, b = f"{self.prefix}{tag}a", f"{self.prefix}{tag}b"
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        _ip("link", "set", a, "netns", ns_a)
        _ip("link", "set", b, "netns", ns_b)
        for ns, dev, addr in ((ns_a, a, addr_a), (ns_b, b, addr_b)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")

    def name_hosts(self, names: dict[str, str]) -> None:
        """Names the client's namespace resolves (for SNI), via /etc/netns/CLIENT/hosts."""
        self.hosts.update(names)
        folder = Path("/etc/netns") / self.client
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", *(f"{a} {n}" for n, a in self.hosts.items())]
        (folder / "hosts").write_text("\n".join(lines) + "\n")

    def run(
        self,
        ns: str,
        *cmd: str,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [IP, "netns", "exec", ns, *cmd],
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            input=input,
        )

    def popen(
        self, ns: str, *cmd: str, log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A process in ``ns`` (``ip netns exec`` execs it: same PID), recorded."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [IP, "netns", "exec", ns, *cmd],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        self.processes.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def destroy(self) -> None:
        for proc in reversed(self.processes):
            self.stop(proc)
        for ns in reversed(self.made):
            subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=20)
        self.made.clear()
        shutil.rmtree(Path("/etc/netns") / self.client, ignore_errors=True)


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
