"""A real grid of processes found through an HTTPS introducer, started through the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from veil.formats.announcement import sign
from veil.formats.nurl import parse_nurl

pytestmark = pytest.mark.integration
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]


def veil(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*VEIL, *args], input=input, capture_output=True, timeout=60)


class Grid:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [*VEIL, "run", str(self.root / name)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=15)

    def wait_for(self, path: Path, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < deadline, f"{path} did not appear"
            time.sleep(0.05)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    g = Grid(tmp_path_factory.mktemp("introgrid"))
    try:
        assert veil("create-introducer", str(g.root / "intro")).returncode == 0
        g.start("intro")
        g.wait_for(g.root / "intro" / "private" / "introducer.furl")
        nurl = (g.root / "intro" / "private" / "introducer.furl").read_text().strip()
        for i in range(5):
            assert veil("create-node", str(g.root / f"s{i}"), "--introducer", nurl).returncode == 0
            g.start(f"s{i}")
        for c in ("c1", "c2"):
            r = veil(
                "create-client",
                str(g.root / c),
                "--introducer",
                nurl,
                "--shares-needed",
                "2",
                "--shares-happy",
                "4",
                "--shares-total",
                "5",
            )
            assert r.returncode == 0
        for i in range(5):
            g.wait_for(g.root / f"s{i}" / "private" / "announcement.yaml")
        yield g
    finally:
        g.stop_all()


def connected(grid: Grid, client: str) -> int:
    deadline = time.monotonic() + 20
    while True:
        r = veil("-d", str(grid.root / client), "status", "--json")
        rows = json.loads(r.stdout)["servers"] if r.returncode == 0 else []
        up = sum(1 for row in rows if row["connected"])
        if up == 5 or time.monotonic() > deadline:
            return up
        time.sleep(0.2)


def test_servers_appear_and_clients_share_files(grid: Grid) -> None:
    assert connected(grid, "c1") == 5
    assert connected(grid, "c2") == 5
    data = os.urandom(300_000)
    cap = veil("-d", str(grid.root / "c1"), "put", "-", input=data).stdout.decode().strip()
    assert cap.startswith("URI:CHK:")
    assert veil("-d", str(grid.root / "c2"), "get", cap).stdout == data


def test_restarted_server_keeps_identity_and_shares(grid: Grid) -> None:
    data = os.urandom(100_000)
    cap = veil("-d", str(grid.root / "c1"), "put", "-", input=data).stdout.decode().strip()
    node_id = (grid.root / "s0" / "node.pubkey").read_text()
    grid.stop("s0")
    grid.start("s0")
    grid.wait_for(grid.root / "s0" / "private" / "announcement.yaml")
    assert (grid.root / "s0" / "node.pubkey").read_text() == node_id
    for i in (1, 2, 3):  # only s0 and s4 remain: k=2 must come from them
        grid.stop(f"s{i}")
    try:
        r = veil("-d", str(grid.root / "c2"), "get", cap)
        assert r.returncode == 0 and r.stdout == data, r.stderr
    finally:
        for i in (1, 2, 3):
            grid.start(f"s{i}")
        for i in (1, 2, 3):
            grid.wait_for(grid.root / f"s{i}" / "private" / "announcement.yaml")
    assert connected(grid, "c1") == 5


def test_killed_introducer_does_not_stop_uploads(grid: Grid) -> None:
    connected(grid, "c1")  # refreshes c1's cache of announcements
    grid.stop("intro", signal.SIGKILL)
    try:
        data = os.urandom(50_000)
        r = veil("-d", str(grid.root / "c1"), "put", "-", input=data)
        assert r.returncode == 0, r.stderr
        assert veil("-d", str(grid.root / "c1"), "get", r.stdout.decode().strip()).stdout == data
    finally:
        furl = grid.root / "intro" / "private" / "introducer.furl"
        furl.unlink()
        grid.start("intro")
        grid.wait_for(furl)  # written once it listens


def _post(nurl_text: str, body: bytes) -> int:
    nurl = parse_nurl(nurl_text)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    import base64

    req = urllib.request.Request(
        f"https://{nurl.host}:{nurl.port}/introducer/v1/announce",
        data=body,
        method="POST",
        headers={
            "Authorization": "Tahoe-LAFS " + base64.b64encode(nurl.swissnum.encode()).decode()
        },
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_forged_and_replayed_announcements_are_refused(grid: Grid) -> None:
    nurl = (grid.root / "intro" / "private" / "introducer.furl").read_text().strip()
    key = Ed25519PrivateKey.generate()
    good = sign({"service-name": "storage", "seqnum": 5, "nickname": "x"}, key)
    forged = {**good.to_json(), "msg": good.msg.replace('"x"', '"evil"')}
    assert _post(nurl, json.dumps(forged).encode()) == 400
    assert _post(nurl, json.dumps(good.to_json()).encode()) == 200
    older = sign({"service-name": "storage", "seqnum": 4, "nickname": "x"}, key)
    assert _post(nurl, json.dumps(older.to_json()).encode()) == 400
    assert _post(nurl, b"not json") == 400
    # an accepted announcement without storage NURLs does not break clients
    assert connected(grid, "c1") == 5


def test_welcome_page_and_status_show_the_same_facts(grid: Grid) -> None:
    c = grid.root / "c1"
    assert (
        veil("-d", str(c), "config", "set", "node.web.port", "tcp:0:interface=127.0.0.1").returncode
        == 0
    )
    grid.start("c1")
    try:
        grid.wait_for(c / "node.url")
        url = (c / "node.url").read_text().strip()
        with urllib.request.urlopen(url + "?t=json", timeout=20) as r:
            page = json.load(r)
        status = json.loads(veil("-d", str(c), "status", "--json").stdout)["servers"]
        assert {s["nodeid"] for s in page["servers"]} == {s["server_id"] for s in status}
        assert {s["nodeid"] for s in page["servers"] if s["connection_status"] == "connected"} == {
            s["server_id"] for s in status if s["connected"]
        }
        assert page["introducers"]["statuses"] == ["configured: default"]
    finally:
        grid.stop("c1")


def test_no_swissnum_outside_private(grid: Grid) -> None:
    """Announcements hold NURLs with swissnums: the introducer keeps them in private/ only."""
    assert connected(grid, "c1") == 5
    swissnums = set()
    for i in range(5):
        ann = (grid.root / f"s{i}" / "private" / "announcement.yaml").read_text()
        for url in re.findall(r"pb://[^\s'\"]+", ann):  # NURLs and the Foolscap fURL
            swissnums.add(url.split("#")[0].rsplit("/", 1)[1])
    assert swissnums
    state = grid.root / "intro" / "private" / "introducer-state.json"
    grid.wait_for(state)
    assert state.stat().st_mode & 0o777 == 0o600
    for node in ["intro", *(f"s{i}" for i in range(5)), "c1", "c2"]:
        for path in (grid.root / node).rglob("*"):
            if "private" in path.relative_to(grid.root / node).parts or not path.is_file():
                continue
            text = path.read_bytes()
            leaked = [s for s in swissnums if s.encode() in text]
            assert not leaked, f"{path} holds a swissnum"
