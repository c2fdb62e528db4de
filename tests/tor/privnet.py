"""A private Tor network on 127.0.0.1 for the Tor tests (stdlib only).

Three directory authorities, two middle relays, three exits and two clients:
ten ``tor`` processes from Debian's package, all bound to 127.0.0.1, with no
route to the real Tor network. Built from the team's measured recipe
(../shared/tor-testnet/RECIPE.md): every option below fixed a failure seen
there. In short: ``TestingTorNetwork`` with our own ``DirAuthority`` lines, a
bandwidth file so every relay is Fast/Guard at once, ``AssumeReachable``,
``LearnCircuitBuildTimeout 0`` (the adaptive timeout learns ~60 ms on
loopback and then kills circuits), ``VanguardsLiteEnabled 0`` on clients,
an exit policy that accepts ``*:*`` (loopback-only policies look like "no
exits" in microdescriptors), and readiness = every node's consensus lists
every relay with its flags, not just "Bootstrapped 100%".

(Tor skips ``OutboundBindAddress`` for loopback destinations, so exits cannot
be given an address of their own here; ``owners.py`` tells their connections
apart by process instead.) Clients have TCP and unix SOCKS and control ports. ``Controller`` speaks the
control protocol (SAFECOOKIE) for the tests' own checks (circuits, streams).
Processes are stopped by the PID in their pid file, checked against
``/proc/PID/cmdline``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
TOR = shutil.which("tor") or "/usr/sbin/tor"
TOR_GENCERT = shutil.which("tor-gencert") or "/usr/bin/tor-gencert"
PORTS_PER_NODE = 4
COMMON = [
    "TestingTorNetwork 1",
    "RunAsDaemon 1",
    "SafeLogging 0",
    "ShutdownWaitLength 0",
    "CookieAuthentication 1",
    "AssumeReachable 1",
    "PathsNeededToBuildCircuits 0.67",
    "TestingDirAuthVoteExit *",
    "TestingDirAuthVoteHSDir *",
    "TestingDirAuthVoteGuard *",
    "TestingMinExitFlagThreshold 0",
    "V3AuthNIntervalsValid 2",
    "LearnCircuitBuildTimeout 0",
    "CircuitBuildTimeout 60",
    "ClientUseIPv6 0",
]


class ControlError(Exception):
    pass


@dataclass
class Node:
    name: str
    role: str  # authority, relay, exit, client
    data_dir: Path
    port: int  # base: +0 ORPort, +1 DirPort, +2 ControlPort, +3 SocksPort
    fingerprint: str = ""
    v3ident: str = ""

    @property
    def torrc(self) -> Path:
        return self.data_dir / "torrc"

    @property
    def control_port(self) -> int:
        return self.port + 2

    @property
    def socks_port(self) -> int:
        return self.port + 3

    @property
    def cookie_path(self) -> Path:
        return self.data_dir / "control_auth_cookie"

    @property
    def socks_path(self) -> str:
        return str(self.data_dir / "socks.sock")

    @property
    def control_path(self) -> str:
        return str(self.data_dir / "control.sock")


class Controller:
    """One control connection (TCP or unix), SAFECOOKIE login, events queued."""

    def __init__(self, node: Node, *, unix: bool = False, timeout: float = 30) -> None:
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(node.control_path)
        else:
            self.sock = socket.create_connection((HOST, node.control_port), timeout=timeout)
        self.buffer = b""
        self.events: list[str] = []
        self.lock = threading.Lock()

    def _line(self) -> str:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ControlError("control connection closed")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def _reply(self) -> list[str]:
        lines = []
        while True:
            line = self._line()
            lines.append(line)
            if line[3:4] == "+":
                while (more := self._line()) != ".":
                    lines.append(more)
            elif line[3:4] == " ":
                return lines

    def command(self, text: str) -> list[str]:
        with self.lock:
            self.sock.sendall(text.encode() + b"\r\n")
            while True:
                reply = self._reply()
                if reply[0].startswith("650"):
                    self.events.append(reply[0][4:])
                    continue
                if not reply[-1].startswith("250"):
                    raise ControlError(f"{text.split()[0]}: {reply}")
                return reply

    def authenticate(self, cookie: bytes | None = None) -> None:
        info = " ".join(self.command("PROTOCOLINFO 1"))
        path = re.search(r'COOKIEFILE="([^"]*)"', info)
        secret = cookie if cookie is not None else Path(path.group(1) if path else "").read_bytes()
        nonce = os.urandom(32)
        answer = self.command(f"AUTHCHALLENGE SAFECOOKIE {nonce.hex()}")[0]
        found = re.search(r"SERVERNONCE=([0-9A-F]+)", answer)
        server_nonce = bytes.fromhex(found.group(1) if found else "")
        key = b"Tor safe cookie authentication controller-to-server hash"
        digest = hmac.new(key, secret + nonce + server_nonce, hashlib.sha256).hexdigest()
        self.command(f"AUTHENTICATE {digest}")

    def getinfo(self, key: str) -> str:
        reply = self.command(f"GETINFO {key}")
        first = reply[0][4:]
        if first.startswith(key + "="):
            value = first[len(key) + 1 :]
            return "\n".join([value, *[r for r in reply[1:-1] if r != "."]]).strip()
        return first

    def poll(self, timeout: float) -> None:
        """Read events for up to ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if not self.buffer and not select.select([self.sock], [], [], left)[0]:
                return
            with self.lock:
                reply = self._reply()
            if reply[0].startswith("650"):
                self.events.append(reply[0][4:])

    def close(self) -> None:
        self.sock.close()


def connect(node: Node, **kw: object) -> Controller:
    ctl = Controller(node, **kw)  # type: ignore[arg-type]
    try:
        ctl.authenticate()
    except BaseException:
        ctl.close()
        raise
    return ctl


@dataclass(frozen=True)
class Stream:
    id: str
    status: str
    circuit: str
    target: str
    username: str


class StreamRecorder:
    """Records the STREAM events of a client tor while the ``with`` block runs."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.streams: list[Stream] = []
        self._stop = threading.Event()
        self._ctl = connect(node)
        self._ctl.command("SETEVENTS STREAM")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._ctl.poll(0.2)

    def __enter__(self) -> StreamRecorder:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        time.sleep(0.5)
        self._stop.set()
        self._thread.join(5)
        self._ctl.close()
        for event in self._ctl.events:
            parts = event.split()
            if len(parts) >= 5 and parts[0] == "STREAM":
                user = re.search(r'SOCKS_USERNAME="([^"]*)"', event)
                self.streams.append(
                    Stream(parts[1], parts[2], parts[3], parts[4], user.group(1) if user else "")
                )


def free_base_port(count: int = 40) -> int:
    """A base port with ``count`` free ports on 127.0.0.1, below the ephemeral range."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for base in range(20000, low - count, 97):
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free range of ports for the Tor test network")


def _run(args: list[str], **kw: object) -> str:
    done = subprocess.run(args, capture_output=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stdout!r} {done.stderr!r}")
    return str(done.stdout.decode(errors="replace"))


@dataclass
class TorNetwork:
    root: Path
    nodes: list[Node]
    started: float = field(default=0.0)

    @property
    def clients(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "client"]

    def exit_pids(self) -> dict[int, str]:
        return {pid: n.name for n in self.nodes if n.role == "exit" and (pid := self.pid(n))}

    @property
    def relays(self) -> list[Node]:
        return [n for n in self.nodes if n.role != "client"]

    @classmethod
    def create(cls, root: Path, base_port: int) -> TorNetwork:
        roles = ["authority"] * 3 + ["relay"] * 2 + ["exit"] * 3 + ["client"] * 2
        nodes, counts = [], {"authority": 0, "relay": 0, "exit": 0, "client": 0}
        for i, role in enumerate(roles):
            name = f"{role[:4]}{counts[role]}"
            counts[role] += 1
            data = root / name
            data.mkdir(parents=True, mode=0o700)
            nodes.append(Node(name, role, data, base_port + PORTS_PER_NODE * i))
        if len(nodes[-1].control_path.encode()) > 100:
            raise RuntimeError(f"{root} is too long a path for tor's unix sockets")
        net = cls(root, nodes)
        net._make_keys()
        net._write_torrcs()
        return net

    def _make_keys(self) -> None:
        for n in self.relays:
            keys = n.data_dir / "keys"
            keys.mkdir(mode=0o700)
            if n.role == "authority":
                _run(
                    [
                        TOR_GENCERT, "--create-identity-key", "-m", "12",
                        "-a", f"{HOST}:{n.port + 1}",
                        "-i", str(keys / "authority_identity_key"),
                        "-s", str(keys / "authority_signing_key"),
                        "-c", str(keys / "authority_certificate"),
                        "--passphrase-fd", "0",
                    ],
                    input=b"\n",
                )  # fmt: skip
                cert = (keys / "authority_certificate").read_text()
                found = re.search(r"^fingerprint (\S+)", cert, re.M)
                n.v3ident = found.group(1) if found else ""
            _run(
                [
                    TOR, "--list-fingerprint", "--DataDirectory", str(n.data_dir),
                    "--ORPort", f"{HOST}:{n.port}", "-f", "/dev/null",
                    "--defaults-torrc", "/dev/null", "--ignore-missing-torrc",
                    "--Log", "err stderr",
                ]
            )  # fmt: skip
            n.fingerprint = (n.data_dir / "fingerprint").read_text().split()[1]

    def dir_authority_lines(self) -> list[str]:
        return [
            f"DirAuthority {n.name} orport={n.port} no-v2 v3ident={n.v3ident} "
            f"{HOST}:{n.port + 1} {n.fingerprint}"
            for n in self.nodes
            if n.role == "authority"
        ]

    def joining_torrc(self) -> str:
        """torrc lines for another tor (e.g. one veil launches) to use this network."""
        return "\n".join([*COMMON[:1], *COMMON[5:], *self.dir_authority_lines(),
                          "VanguardsLiteEnabled 0"]) + "\n"  # fmt: skip

    def _write_torrcs(self) -> None:
        for n in self.nodes:
            d = n.data_dir
            lines = [
                *COMMON,
                f"DataDirectory {d}",
                f"PidFile {d}/pid",
                f"Nickname {n.name}",
                f"Log notice file {d}/notice.log",
                f"ControlPort {HOST}:{n.control_port}",
                *self.dir_authority_lines(),
            ]
            if n.role == "client":
                lines += [
                    "VanguardsLiteEnabled 0",
                    f"SocksPort {HOST}:{n.socks_port}",
                    f"SocksPort unix:{n.socks_path}",
                    f"ControlPort unix:{n.control_path}",
                ]
            else:
                lines += [
                    "SocksPort 0",
                    f"ORPort {HOST}:{n.port} IPv4Only",
                    f"Address {HOST}",
                    f"ContactInfo {n.name}@testnet.invalid",
                ]
            if n.role == "authority":
                lines += [
                    f"V3BandwidthsFile {d}/bwfile",
                    f"DirPort {HOST}:{n.port + 1} IPv4Only",
                    "AuthoritativeDirectory 1",
                    "V3AuthoritativeDirectory 1",
                    "TestingV3AuthInitialVotingInterval 10",
                    "TestingV3AuthInitialVoteDelay 2",
                    "TestingV3AuthInitialDistDelay 2",
                    "V3AuthVotingInterval 10",
                    "V3AuthVoteDelay 2",
                    "V3AuthDistDelay 2",
                ]
            if n.role in ("authority", "relay"):
                lines += ["ExitRelay 0", "ExitPolicy reject *:*"]
            if n.role == "exit":
                lines += [
                    "ExitRelay 1",
                    "ExitPolicyRejectPrivate 0",
                    "ExitPolicy accept *:*",
                ]
            n.torrc.write_text("\n".join(lines) + "\n")

    def _write_bandwidth_files(self) -> None:
        body = f"{int(time.time())}\nversion=1.0.0\n=====\n" + "".join(
            f"node_id=${n.fingerprint} bw=1000 nick={n.name}\n" for n in self.relays
        )
        for n in self.nodes:
            if n.role == "authority":
                (n.data_dir / "bwfile").write_text(body)

    def pid(self, node: Node) -> int | None:
        try:
            pid = int((node.data_dir / "pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if str(node.torrc).encode() not in cmdline.split(b"\0"):
            return None
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if stat[0] == "Z" else pid

    def start(self, owner_pid: int | None = None) -> None:
        self._write_bandwidth_files()
        extra = ["__OwningControllerProcess", str(owner_pid)] if owner_pid else []
        procs = []
        for n in self.nodes:  # authorities, relays, exits, clients: in that order
            args = [TOR, "-f", str(n.torrc), "--defaults-torrc", "/dev/null", *extra]
            procs.append(
                (n, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
            )
        for n, p in procs:
            out, _ = p.communicate(timeout=60)
            if p.returncode != 0:
                raise RuntimeError(f"tor {n.name} did not start: {out.decode(errors='replace')}")
        self.started = time.monotonic()

    def wait_ready(self, timeout: float = 180) -> float:
        """Seconds from start until every client is bootstrapped, every node's
        consensus lists every relay with its flags, and circuits exist."""
        deadline = time.monotonic() + timeout
        pending = list(self.nodes)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout} s: {[n.name for n in pending]}")
            pending = [n for n in pending if not self._node_ready(n)]
            if pending:
                time.sleep(0.5)
        for n in self.clients:
            ctl = connect(n)
            try:
                while ctl.getinfo("status/circuit-established") != "1":
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{n.name} builds no circuit")
                    try:
                        ctl.command("EXTENDCIRCUIT 0")
                    except ControlError:
                        pass
                    time.sleep(1)
            finally:
                ctl.close()
        return time.monotonic() - self.started

    def _needed_flags(self, relay: Node) -> set[str]:
        need = {"Running", "Valid", "HSDir"}
        if relay.role != "authority":
            need |= {"Fast", "Guard"} | ({"Exit"} if relay.role == "exit" else set())
        return need

    def _node_ready(self, node: Node) -> bool:
        try:
            ctl = connect(node, timeout=5)
        except (OSError, ControlError):
            return False
        try:
            if node.role == "client" and "PROGRESS=100" not in ctl.getinfo(
                "status/bootstrap-phase"
            ):
                return False
            flags, name = {}, ""
            for line in ctl.getinfo("ns/all").splitlines():
                if line.startswith("r "):
                    name = line.split()[1]
                elif line.startswith("s ") and name:
                    flags[name] = set(line[2:].split())
        except (OSError, ControlError):
            return False
        finally:
            ctl.close()
        return all(self._needed_flags(r) <= flags.get(r.name, set()) for r in self.relays)

    def notice_tail(self, lines: int = 5) -> str:
        out = []
        for n in self.nodes:
            log = n.data_dir / "notice.log"
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
            out.append(f"--- {n.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM every tor of this network, SIGKILL what is left after ``timeout``.
        The PIDs are read once: tor deletes its pid file as it exits, and now and
        then hangs after that (seen in the recipe and here)."""
        running = {pid: n for n in self.nodes if (pid := self.pid(n))}
        for pid in running:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(p, n) for p, n in running.items()):
            time.sleep(0.1)
        for pid, node in running.items():
            if _alive(pid, node):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int, node: Node) -> bool:
    """Is ``pid`` still this node's tor (and not a zombie)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return str(node.torrc).encode() in cmdline.split(b"\0") and state != "Z"
