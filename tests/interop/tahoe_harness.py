"""Real Tahoe-LAFS 1.20 nodes on 127.0.0.1, for live interop tests and benchmarks.

``scripts/install-tahoe.sh`` installs Tahoe into a cached virtualenv of its own;
``tahoe_executable`` runs it and returns the ``tahoe`` path. ``TahoeNode``
creates a storage or client node directory (it writes ``tahoe.cfg`` itself,
exactly as ``tahoe create-node`` would, which saves a second of start-up per
node), runs ``tahoe run`` in its own process group, waits until it is ready,
and stops it by PID. Clients find servers through ``private/servers.yaml``: no
introducer. ``storage_announcement`` builds the ``ann`` entry of a Tahoe storage
node (its NURL is computed from its certificate, Tahoe does not write it down);
``announcement_for`` builds one for any other server (e.g. veil), adding the
``anonymous-storage-FURL`` that 1.20 clients insist on. ``TahoeGrid`` starts
many nodes in parallel and always stops them all.

Not for production use, and not part of veil: this is test and benchmark code.
See docs/tahoe-harness.md for timings and pitfalls.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from veil.adapters.http.tls import spki_hash_of_pem
from veil.formats import base32
from veil.formats.nurl import NURL, parse_furl

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 120.0
FAKE_FURL_LOCATION = "tcp:127.0.0.1:1"  # never dialled when NURLs are present (digest §5.7)

Announcement = dict[str, Any]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
_RUNNING: dict[int, TahoeNode] = {}


class TahoeHarnessError(Exception):
    """A Tahoe node could not be created, started, reached or stopped."""


def tahoe_executable() -> str:
    """Path of Tahoe 1.20.0's ``tahoe``, installing it first if needed (~25 s once)."""
    try:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-tahoe.sh")],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.CalledProcessError as e:
        raise TahoeHarnessError(f"scripts/install-tahoe.sh failed:\n{e.stderr}") from e
    return out.stdout.strip().splitlines()[-1]


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _subprocess_env() -> dict[str, str]:
    """Our environment minus what could leak into Tahoe's interpreter or reach a proxy."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONWARNINGS"}
    return {
        k: v for k, v in os.environ.items() if k not in drop and not k.lower().endswith("_proxy")
    }


def _http(method: str, url: str, body: bytes | None = None, timeout: float = HTTP_TIMEOUT) -> bytes:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return bytes(r.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:2000]
        raise TahoeHarnessError(f"{method} {url} -> HTTP {e.code}: {detail}") from e


# -- announcements and servers.yaml -----------------------------------------------------


def announcement_for(
    *,
    nurls: Iterable[str],
    furl: str | None = None,
    tubid: str | None = None,
    nickname: str = "server",
    permutation_seed: str | None = None,
) -> Announcement:
    """The ``ann`` dict of a servers.yaml entry for any HTTP storage server.

    Tahoe 1.20 silently drops an entry without ``anonymous-storage-FURL``, so
    when ``furl`` is not given one is made from ``tubid`` (32 base32 chars, the
    20-byte lease seed; default: 20 zero bytes) at an address never dialled.
    """
    nurl_list = [str(n) for n in nurls]
    if not nurl_list:
        raise TahoeHarnessError("an HTTP storage server needs at least one NURL")
    if furl is None:
        tub = tubid if tubid is not None else "a" * 32
        swissnum = nurl_list[0].split("/")[-1].split("#")[0]
        furl = f"pb://{tub}@{FAKE_FURL_LOCATION}/{swissnum}"
    parse_furl(furl)  # a malformed fURL would make Tahoe drop the server silently
    ann: Announcement = {
        "nickname": nickname,
        "anonymous-storage-FURL": furl,
        "anonymous-storage-NURLs": nurl_list,
    }
    if permutation_seed is not None:
        ann["permutation-seed-base32"] = permutation_seed
    return ann


def servers_yaml_document(servers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{"storage": {server_id: {"ann": ann}}}``, the shape Tahoe reads."""
    return {"storage": {sid: {"ann": dict(ann)} for sid, ann in servers.items()}}


def write_servers_yaml(node_dir: Path, servers: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write ``NODEDIR/private/servers.yaml`` (read by Tahoe only at start-up)."""
    path = node_dir / "private" / "servers.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(servers_yaml_document(servers), sort_keys=True))
    return path


def storage_announcement(node: TahoeNode) -> tuple[str, Announcement]:
    """(server id ``v0-…``, ann) for a started Tahoe storage node, as it announces them."""
    node.wait_for_file("private/storage.furl")
    furl = (node.path / "private" / "storage.furl").read_text().strip()
    spki = spki_hash_of_pem((node.path / "private" / "node.pem").read_bytes())
    # Tahoe makes one NURL per tcp: hint of tub.location, with the storage fURL's swissnum.
    nurl = NURL("pb", spki, "127.0.0.1", node.port, parse_furl(furl).swissnum)
    seed = (node.path / "permutation-seed").read_text().strip()
    ann = announcement_for(
        nurls=[nurl.to_string()], furl=furl, nickname=node.nickname, permutation_seed=seed
    )
    return node.server_id, ann


# -- nodes ----------------------------------------------------------------------------------

_STORAGE_CFG = """\
[node]
nickname = {nickname}
reveal-IP-address = true
web.port = tcp:{webport}:interface=127.0.0.1
web.static = public_html
tub.port = tcp:{port}:interface=127.0.0.1
tub.location = tcp:127.0.0.1:{port}

[client]
shares.needed = 1
shares.happy = 1
shares.total = 1

[storage]
enabled = true
reserved_space = 0

[helper]
enabled = false
"""

_CLIENT_CFG = """\
[node]
nickname = {nickname}
reveal-IP-address = true
web.port = tcp:{webport}:interface=127.0.0.1
web.static = public_html
tub.port = disabled
tub.location = disabled

[client]
shares.needed = {needed}
shares.happy = {happy}
shares.total = {total}
{extra}
[storage]
enabled = false

[helper]
enabled = false
"""

# 'tahoe run' recognises a node directory by a *client*.tac file; 'create-node' writes this one.
_TAC = "import sys\nprint('run this node with: tahoe run NODEDIR')\nsys.exit(1)\n"


@dataclass
class TahoeNode:
    """One Tahoe node directory and, once started, its ``tahoe run`` process."""

    tahoe: str
    path: Path
    webport: int
    port: int = 0  # the storage (tub) port; 0 for clients
    kind: Literal["storage", "client"] = "client"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def create_storage(cls, tahoe: str, path: Path, *, nickname: str | None = None) -> TahoeNode:
        """A storage node listening on free ports of 127.0.0.1 (no reserved space)."""
        port, webport = free_port(), free_port()
        cfg = _STORAGE_CFG.format(nickname=nickname or path.name, webport=webport, port=port)
        cls._write_dir(path, cfg)
        return cls(tahoe, path, webport, port, "storage")

    @classmethod
    def create_client(
        cls,
        tahoe: str,
        path: Path,
        *,
        needed: int,
        happy: int,
        total: int,
        servers: Mapping[str, Mapping[str, Any]] | None = None,
        convergence: bytes | None = None,
        max_segment_size: int | None = None,
        nickname: str | None = None,
    ) -> TahoeNode:
        """A client-only node (web API on a free port) using ``servers`` from servers.yaml."""
        if not 1 <= needed <= total <= 256 or not 1 <= happy <= total:
            raise TahoeHarnessError(f"bad encoding {needed}/{happy}/{total} (needed/happy/total)")
        extra = ""
        if max_segment_size is not None:
            extra = f"shares._max_immutable_segment_size_for_testing = {max_segment_size}\n"
        webport = free_port()
        cfg = _CLIENT_CFG.format(
            nickname=nickname or path.name,
            webport=webport,
            needed=needed,
            happy=happy,
            total=total,
            extra=extra,
        )
        cls._write_dir(path, cfg)
        write_servers_yaml(path, servers or {})
        if convergence is not None:
            if len(convergence) != 32:
                raise TahoeHarnessError("a Tahoe convergence secret is 32 bytes")
            (path / "private" / "convergence").write_text(base32.b2a(convergence) + "\n")
        return cls(tahoe, path, webport, 0, "client")

    @staticmethod
    def _write_dir(path: Path, cfg: str) -> None:
        if (path / "tahoe.cfg").exists():
            raise TahoeHarnessError(f"{path} is already a node directory")
        (path / "private").mkdir(parents=True, mode=0o700)
        (path / "tahoe.cfg").write_text(cfg)
        (path / "tahoe-client.tac").write_text(_TAC)

    # -- facts ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.webport}"

    @property
    def nickname(self) -> str:
        for line in (self.path / "tahoe.cfg").read_text().splitlines():
            if line.startswith("nickname = "):
                return line.removeprefix("nickname = ").strip()
        return self.path.name

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def server_id(self) -> str:
        """``v0-<b32 ed25519 key>``, the id clients know this node by (made on first start)."""
        self.wait_for_file("node.pubkey")
        return "v0-" + (self.path / "node.pubkey").read_text().strip().removeprefix("pub-v0-")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.path / "run.log").read_text(errors="replace")
        except OSError:
            return "(no run.log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- process --------------------------------------------------------------------------

    def start(self) -> None:
        """Run ``tahoe run`` in a new process group (returns at once; see ``wait_ready``)."""
        if self.running:
            return
        with open(self.path / "run.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.tahoe, "run", "--allow-stdin-close", str(self.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env=_subprocess_env(),
            )
        _RUNNING[self.proc.pid] = self

    def signal_stop(self) -> None:
        """Send SIGTERM to the node's process group, without waiting."""
        if self.running and self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, then SIGKILL it after ``timeout`` seconds."""
        proc = self.proc
        if proc is None:
            return
        self.signal_stop()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=timeout)
        _RUNNING.pop(proc.pid, None)

    def wait_for_file(self, relpath: str, timeout: float = START_TIMEOUT) -> None:
        """Wait until the node has written ``relpath`` (keys appear on first start)."""
        deadline = time.monotonic() + timeout
        while not (self.path / relpath).exists():
            if self.proc is None:
                raise TahoeHarnessError(f"{self.path}/{relpath} is made when the node starts")
            self._check_alive()
            if time.monotonic() > deadline:
                raise TahoeHarnessError(f"{self.path}/{relpath} did not appear in {timeout}s")
            time.sleep(0.05)

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise TahoeHarnessError(
                f"tahoe node {self.path} exited ({self.proc.returncode}):\n{self.log_tail()}"
            )

    def welcome(self) -> dict[str, Any]:
        """The web API's welcome page as JSON (``GET /?t=json``)."""
        return dict(json.loads(_http("GET", self.url + "/?t=json", timeout=5)))

    def connected_servers(self) -> set[str]:
        """Ids of the servers this node is connected to now."""
        return {
            str(s.get("nodeid"))
            for s in self.welcome().get("servers", [])
            if str(s.get("connection_status", "")).lower().startswith("connected")
        }

    def wait_ready(
        self,
        connected_servers: int | Collection[str] = 0,
        timeout: float = START_TIMEOUT,
    ) -> None:
        """Wait until the web API answers, a storage node's port is open and, for a
        client, ``connected_servers`` (a count or a set of ids) are connected."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                up = self.connected_servers()
                if isinstance(connected_servers, int):
                    servers_ok = len(up) >= connected_servers
                else:
                    servers_ok = set(connected_servers) <= up
                port_ok = self.kind != "storage" or (
                    _port_open(self.port) and (self.path / "private" / "storage.furl").exists()
                )
                if servers_ok and port_ok:
                    return
            except (OSError, TahoeHarnessError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TahoeHarnessError(
                    f"tahoe node {self.path} not ready in {timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    # -- files through the web API ----------------------------------------------------------

    def put(self, data: bytes) -> str:
        """Upload an immutable file through ``PUT /uri``; returns its cap."""
        return _http("PUT", self.url + "/uri", data).decode().strip()

    def get(self, cap: str) -> bytes:
        """Download a file through ``GET /uri/CAP``."""
        return _http("GET", f"{self.url}/uri/{cap}")

    def check(self, cap: str, *, verify: bool = True, add_lease: bool = False) -> dict[str, Any]:
        """``POST /uri/CAP?t=check`` (the JSON that ``tahoe check --raw`` prints)."""
        flags = f"verify={str(verify).lower()}&add-lease={str(add_lease).lower()}"
        body = _http("POST", f"{self.url}/uri/{cap}?t=check&{flags}&output=JSON", b"")
        return dict(json.loads(body))

    # -- files through the command line -----------------------------------------------------

    def cli(self, *args: str, stdin: bytes | None = None, timeout: float = HTTP_TIMEOUT) -> bytes:
        """Run ``tahoe -d NODEDIR ARGS...`` (about 1.2 s each: Tahoe's imports)."""
        r = subprocess.run(
            [self.tahoe, "-d", str(self.path), *args],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=timeout,
            env=_subprocess_env(),
        )
        if r.returncode != 0:
            raise TahoeHarnessError(
                f"tahoe {' '.join(args)} failed ({r.returncode}): {r.stderr.decode(errors='replace')}"
            )
        return bytes(r.stdout)

    def cli_put(self, data: bytes) -> str:
        """``tahoe put`` from stdin; returns the cap."""
        return self.cli("put", "-", stdin=data).decode().strip()

    def cli_get(self, cap: str) -> bytes:
        """``tahoe get CAP`` to stdout."""
        return self.cli("get", cap)

    def cli_check(self, cap: str, *, verify: bool = True) -> dict[str, Any]:
        """``tahoe check [--verify] --raw CAP`` parsed as JSON."""
        return dict(json.loads(self.cli("check", *(["--verify"] if verify else []), "--raw", cap)))


class TahoeGrid:
    """Several Tahoe nodes under one directory, started in parallel, always all stopped.

    ``with TahoeGrid(tahoe, root) as g: g.add_storage(3); c = g.add_client("c", ...);
    g.start()``. Storage nodes start first (clients find them listening and connect
    at once); clients created without ``servers`` use every storage node of the grid.
    """

    def __init__(self, tahoe: str, root: Path) -> None:
        self.tahoe = tahoe
        self.root = root
        self.storage: list[TahoeNode] = []
        self.clients: list[TahoeNode] = []
        self._expected: dict[Path, set[str]] = {}

    def add_storage(self, count: int = 1) -> list[TahoeNode]:
        """Create ``count`` more storage nodes (named storage-0, storage-1, ...)."""
        new = [
            TahoeNode.create_storage(self.tahoe, self.root / f"storage-{len(self.storage) + i}")
            for i in range(count)
        ]
        self.storage.extend(new)
        return new

    def add_client(
        self,
        name: str,
        *,
        needed: int,
        happy: int,
        total: int,
        servers: Mapping[str, Mapping[str, Any]] | None = None,
        convergence: bytes | None = None,
        max_segment_size: int | None = None,
    ) -> TahoeNode:
        """Create a client; ``servers=None`` means this grid's storage nodes (written on
        ``start``, once they have made their keys)."""
        node = TahoeNode.create_client(
            self.tahoe,
            self.root / name,
            needed=needed,
            happy=happy,
            total=total,
            servers=servers,
            convergence=convergence,
            max_segment_size=max_segment_size,
        )
        self.clients.append(node)
        if servers is not None:
            self._expected[node.path] = set(servers)
        return node

    def servers(self) -> dict[str, Announcement]:
        """servers.yaml entries (id -> ann) of every storage node of this grid."""
        return dict(storage_announcement(n) for n in self.storage)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start every node not yet running and wait until all are ready."""
        pending = [n for n in self.storage if not n.running]
        for node in pending:
            node.start()
        for node in pending:
            node.wait_ready(timeout=timeout)
        waiting = [n for n in self.clients if not n.running]
        for node in waiting:
            if node.path not in self._expected:
                write_servers_yaml(node.path, self.servers())
                self._expected[node.path] = {n.server_id for n in self.storage}
            node.start()
        for node in waiting:
            try:
                node.wait_ready(self._expected[node.path], timeout=timeout)
            except TahoeHarnessError:
                # Tahoe backs off between connection attempts; under a loaded
                # machine its first ones can fail and the next come too late
                # (seen once in CI). A restarted client tries again at once.
                node.stop()
                node.start()
                node.wait_ready(self._expected[node.path], timeout=timeout)

    def stop(self) -> None:
        """Stop every node: SIGTERM to all at once, then wait (SIGKILL if needed)."""
        nodes = self.clients + self.storage
        for node in nodes:
            node.signal_stop()
        for node in nodes:
            node.stop()

    def __enter__(self) -> TahoeGrid:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_leftovers() -> None:
    for node in list(_RUNNING.values()):
        node.stop(timeout=2)


atexit.register(_stop_leftovers)
