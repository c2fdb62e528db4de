"""A local grid of real processes whose client node serves the web gateway.

``ui_node(root)`` starts ``veil grid start`` (three storage servers), gives the
client a ``web.port`` on 127.0.0.1 (an ephemeral port) and an alias, runs
``veil run`` on it, and yields a ``UiNode``; everything is stopped by PID at
the end. ``login()`` gets a session the way a user does, with ``veil webopen``.
Shared by tests/integration/test_web_ui_*.py and tests/browser/.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
TIMEOUT = 60


def veil(*args: str, code: int = 0) -> str:
    r = subprocess.run([*VEIL, *args], capture_output=True, timeout=TIMEOUT)
    assert r.returncode == code, r.stderr.decode()
    return r.stdout.decode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class UiNode:
    client: Path
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, code: int = 0) -> str:
        return veil("-d", str(self.client), *args, code=code)

    def login_url(self, path: str = "") -> str:
        return self.cli("webopen", "--print-only", *([path] if path else [])).splitlines()[0]

    def login(self) -> str:
        """A session cookie, from the one-time address ``veil webopen`` prints."""
        target = urlsplit(self.login_url())
        r = self.request("GET", f"{target.path}?{target.query}")
        assert r.status == 303, r.text
        return r.cookies["veil_ui"]

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        cookie: str | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            sent = dict(headers or {})
            if cookie:
                sent["Cookie"] = f"veil_ui={cookie}"
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            cookies = {}
            for value in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                cookies[name] = rest.split(";", 1)[0]
            return Reply(resp.status, dict(resp.headers.items()), data, cookies)
        finally:
            conn.close()


@contextmanager
def ui_node(root: Path) -> Iterator[UiNode]:
    grid = root / "g"
    shares = ["--shares-needed", "2", "--shares-happy", "2", "--shares-total", "3"]
    veil("grid", "start", str(grid), "--servers", "3", *shares)
    client = grid / "client"
    proc = None
    try:
        veil("-d", str(client), "config", "set", "node.web.port", "tcp:0:interface=127.0.0.1")
        veil("-d", str(client), "create-alias", "tahoe")
        log = open(root / "client-run.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen([*VEIL, "run", str(client)], stdout=log, stderr=log)
        url_file = client / "node.url"
        deadline = time.monotonic() + TIMEOUT
        while not (url_file.exists() and url_file.read_text().endswith("/\n")):  # written whole
            assert proc.poll() is None, (root / "client-run.log").read_text()
            assert time.monotonic() < deadline, "the client's web gateway did not start"
            time.sleep(0.05)
        port = int(url_file.read_text().strip().rstrip("/").rsplit(":", 1)[1])
        yield UiNode(client, port)
    finally:
        if proc is not None:
            proc.terminate()  # our own child, by its PID
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, 9)
                proc.wait()
            log.close()
        veil("grid", "stop", str(grid))
