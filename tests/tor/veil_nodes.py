"""veil nodes for the Tor tests, made and run through the command line.

``VeilNodes`` creates storage servers (onion-only, TCP, or both), an
introducer and clients with ``veil create-*``, runs each server as its own
``veil run`` process (stopped by PID), and writes a client's
``servers.yaml`` from the servers' ``private/announcement.yaml``. Every server's tor
settings come from the environment given to it, as on a real system.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
SHARES = ["--shares-needed", "2", "--shares-happy", "3", "--shares-total", "4"]


def veil(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    """Run one veil command; its output, or an AssertionError with its stderr."""
    done = subprocess.run(
        [*VEIL, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"veil {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


@dataclass
class Server:
    path: Path
    process: subprocess.Popen[bytes]

    @property
    def announcement(self) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load(
            (self.path / "private" / "announcement.yaml").read_text()
        )
        return doc

    @property
    def tcp_port(self) -> int | None:
        for nurl in self.announcement["ann"]["anonymous-storage-NURLs"]:
            if nurl.startswith("pb://"):
                return int(nurl.split("@")[1].split("/")[0].rsplit(":", 1)[1])
        return None


@dataclass
class VeilNodes:
    root: Path
    servers: list[Server] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _run(self, path: Path, env: dict[str, str], ready: Path) -> subprocess.Popen[bytes]:
        log = open(path / "run.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [*VEIL, "run", str(path)],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                self._kill(proc)
                raise AssertionError(
                    f"{path.name} did not start:\n{(path / 'run.log').read_text()}"
                )
            time.sleep(0.1)
        return proc

    def server(
        self,
        name: str,
        *,
        listen: str,
        env: dict[str, str],
        control: str | None = None,
        hide_ip: bool = True,
        introducer: str | None = None,
        config: dict[str, str] | None = None,
    ) -> Server:
        path = self.root / name
        args = ["create-node", f"--listen={listen}", "--nickname", name, *SHARES, str(path)]
        if hide_ip:
            args.insert(1, "--hide-ip")
        if control:
            args.insert(1, f"--tor-control-port={control}")
        if introducer:
            args.insert(1, f"--introducer={introducer}")
        veil(*args)
        for key, value in (config or {}).items():
            veil("-d", str(path), "config", "set", key, value)
        server = Server(path, self._run(path, env, path / "private" / "announcement.yaml"))
        self.servers.append(server)
        return server

    def introducer(self, name: str, *, env: dict[str, str], control: str | None = None) -> str:
        path = self.root / name
        args = ["create-introducer", "--hide-ip", str(path)]
        if control:
            args.insert(1, f"--tor-control-port={control}")
        veil(*args)
        self.others.append(self._run(path, env, path / "private" / "introducer.furl"))
        return (path / "private" / "introducer.furl").read_text().strip()

    def client(
        self, name: str, *, hide_ip: bool, servers: list[Server] | None = None, introducer: str = ""
    ) -> Path:
        path = self.root / name
        args = ["create-client", "--nickname", name, *SHARES, str(path)]
        if hide_ip:
            args.insert(1, "--hide-ip")
        if introducer:
            args.insert(1, f"--introducer={introducer}")
        veil(*args)
        if servers:
            doc = {
                "storage": {
                    s.announcement["server_id"]: {"ann": s.announcement["ann"]} for s in servers
                }
            }
            (path / "private" / "servers.yaml").write_text(yaml.safe_dump(doc))
        return path

    def wait_connected(self, client: Path, env: dict[str, str], count: int) -> list[Any]:
        """Until ``veil status`` reaches ``count`` servers (onion services take a
        second or two to be published); bounded at 90 s."""
        deadline = time.monotonic() + 90
        while True:
            rows: list[Any] = json.loads(veil("-d", str(client), "status", "--json", env=env))[
                "servers"
            ]
            if sum(1 for r in rows if r["connected"]) >= count:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"only reached {rows}")
            time.sleep(1)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop(self) -> None:
        for proc in [s.process for s in self.servers] + self.others:
            self._kill(proc)
