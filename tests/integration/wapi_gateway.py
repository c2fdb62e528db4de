"""A veil grid on loopback with a client whose ``veil run`` serves the web API.

``running_gateway(root)`` starts ``veil grid start`` (three storage servers,
2-of-3, happy 2), sets the client's ``[node] web.port`` to a free port of
127.0.0.1, runs ``veil run`` on it, waits for ``node.url``, and always stops
both (the gateway by its PID, the grid by ``veil grid stop``). ``http`` is a
small urllib client that returns (status, headers, body) and never follows
redirects. Test code, not part of veil.
"""

from __future__ import annotations

import configparser
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
START_TIMEOUT = 60.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kw: object) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> Answer:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return Answer(r.status, dict(r.headers.items()), r.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, dict(e.headers.items()), e.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_web_port(node: Path, web_port: str) -> None:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(node / "tahoe.cfg")
    if not cfg.has_section("node"):
        cfg.add_section("node")
    cfg.set("node", "web.port", web_port)
    with open(node / "tahoe.cfg", "w") as f:
        cfg.write(f)


@contextmanager
def gateway_on(node: Path) -> Iterator[str]:
    """``veil run NODE`` (whose web.port is set); yields the gateway's URL."""
    (node / "node.url").unlink(missing_ok=True)
    log = open(node / "gateway.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([*VEIL, "run", str(node)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (node / "node.url").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"veil run failed:\n{(node / 'gateway.log').read_text()}")
            time.sleep(0.05)
        yield (node / "node.url").read_text().strip().rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@contextmanager
def running_gateway(root: Path) -> Iterator[tuple[str, Path]]:
    """A fresh veil grid and its client's gateway: yields (URL, client node dir)."""
    grid = root / "grid"
    shares = ["--shares-needed", "2", "--shares-happy", "2", "--shares-total", "3"]
    subprocess.run(
        [*VEIL, "grid", "start", str(grid), "--servers", "3", *shares],
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT,
    )
    try:
        client = grid / "client"
        set_web_port(client, f"tcp:{free_port()}:interface=127.0.0.1")
        with gateway_on(client) as url:
            yield url, client
    finally:
        subprocess.run([*VEIL, "grid", "stop", str(grid)], capture_output=True, timeout=60)
