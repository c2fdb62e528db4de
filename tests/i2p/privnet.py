"""A private I2P network for the I2P tests: i2pd routers in a network namespace.

Built from the team's measured recipe (../shared/i2p-testnet/RECIPE.md; not
needed at run time, everything is here): Debian 12's i2pd 2.45.1 drops
incoming connections from 127.0.0.0/8 whatever ``reservedrange`` says, so the
routers run in a network namespace of their own (``unshare -n``: a loopback
device and no route out) on 198.18.0.N, network id 99, SSU2 off, no reseed.
Each router is started once to make its keys, stopped, and every router's
``router.info`` is copied into every other's netDb; then all start and the
network is ready when every web console shows a non-zero tunnel success rate
and at least four tunnels. The first three routers are floodfills; SAM
clients use the others only (pitfall 5: i2pd before 2.48 misreads LeaseSets
it holds as a floodfill). Pitfalls 2-4 (``--datadir``, the addressbook) are
handled in ``CONF``; sessions ask for ``inbound.quantity=3`` (pitfall 6; in
``veil.adapters.net.sam_client``).

veil runs outside the namespace, as on a real machine with a local router:
``relay.py`` listens on host 127.0.0.1 ports and forwards each into the
namespace's SAM and web console ports. Every process is stopped by its PID
(checked against ``/proc/PID/cmdline``) with SIGTERM (SIGINT would wait for
transit tunnels); each also gets SIGTERM if pytest dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

I2PD = "/usr/sbin/i2pd"
RELAY = Path(__file__).with_name("relay.py")
I2P_B64 = bytes.maketrans(b"+/", b"-~")
PR_SET_PDEATHSIG = 1
CONF = """\
log = file
logfile = {d}/i2pd.log
loglevel = warn
pidfile = {d}/i2pd.pid
tunconf = {d}/tunnels.conf
tunnelsdir = {d}/tunnels.d
certsdir = /usr/share/i2pd/certificates
daemon = false
service = false
ipv4 = true
ipv6 = false
host = {host}
address4 = {host}
nat = false
port = {ntcp2}
netid = 99
reservedrange = false
floodfill = {floodfill}
bandwidth = X
notransit = false
[ntcp2]
enabled = true
published = true
port = {ntcp2}
[ssu2]
enabled = false
[http]
enabled = true
address = 127.0.0.1
port = {http}
strictheaders = false
[httpproxy]
enabled = false
[socksproxy]
enabled = false
[sam]
enabled = true
address = 127.0.0.1
port = {sam}
[bob]
enabled = false
[i2cp]
enabled = false
[i2pcontrol]
enabled = false
[upnp]
enabled = false
[nettime]
enabled = false
[addressbook]
enabled = true
[reseed]
verify = false
threshold = 0
urls =
yggurls =
[limits]
transittunnels = 5000
[exploratory]
inbound.length = 1
outbound.length = 1
inbound.quantity = 2
outbound.quantity = 2
[persist]
profiles = false
"""


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _router_child() -> None:
    """A router stands for other people's machines: it runs at normal priority
    even when the suite is niced (scripts/test.sh, beside the rest), so that
    the network itself is not starved into stalled tunnels (seen in CI)."""
    _die_with_parent()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:  # not root: the suite's own niceness stays
        pass


def free_host_base(count: int, start: int = 26000) -> int:
    """A base with ``count`` free ports on 127.0.0.1 (for the relay)."""
    for base in range(start, 32000, 53):
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free range of ports for the I2P relay")


def ident_b64(router_info: bytes) -> str:
    """The b64 identity hash of a router.info (identity = 387 + certificate bytes)."""
    cert_len = int.from_bytes(router_info[385:387], "big")
    digest = hashlib.sha256(router_info[: 387 + cert_len]).digest()
    return base64.b64encode(digest).translate(I2P_B64).decode()


@dataclass
class Router:
    index: int
    data_dir: Path
    floodfill: bool
    process: subprocess.Popen[bytes] | None = None

    @property
    def ntcp2(self) -> int:
        return 20000 + self.index

    @property
    def http(self) -> int:
        return 20100 + self.index

    @property
    def sam(self) -> int:
        return 20200 + 10 * self.index


@dataclass
class I2PNetwork:
    root: Path
    routers: list[Router] = field(default_factory=list)
    host_base: int = 0
    holder: subprocess.Popen[bytes] | None = None
    relay: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, root: Path, n: int = 6, floodfills: int = 3) -> I2PNetwork:
        root.mkdir(parents=True, exist_ok=True)
        net = cls(root, host_base=free_host_base(2 * n))
        for i in range(n):
            d = root / f"r{i}"
            (d / "tunnels.d").mkdir(parents=True, exist_ok=True)
            (d / "tunnels.conf").write_text("")
            (d / "hosts.txt").write_text("")  # an addressbook that is "loaded" (pitfall 4)
            (d / "subscriptions.txt").write_text("# none: private test network\n")
            router = Router(i, d, i < floodfills)
            (d / "i2pd.conf").write_text(
                CONF.format(
                    d=d,
                    host=f"198.18.0.{i + 1}",
                    ntcp2=router.ntcp2,
                    http=router.http,
                    sam=router.sam,
                    floodfill="true" if router.floodfill else "false",
                )
            )
            net.routers.append(router)
        return net

    # -- host ports -------------------------------------------------------------

    def sam_port(self, i: int) -> int:
        """Host 127.0.0.1 port of router ``i``'s SAM bridge."""
        return self.host_base + 2 * i

    def console_port(self, i: int) -> int:
        return self.host_base + 2 * i + 1

    @property
    def client_routers(self) -> list[int]:
        """Routers whose SAM bridges the tests use (not floodfills)."""
        return [r.index for r in self.routers if not r.floodfill]

    # -- life -------------------------------------------------------------------

    def _ns(self, *args: str) -> list[str]:
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), "-n", *args]

    def _start_routers(self, *extra: str) -> None:
        for r in self.routers:
            log = open(r.data_dir / "stdout.log", "ab")  # noqa: SIM115 - the child keeps it
            r.process = subprocess.Popen(
                self._ns(I2PD, f"--datadir={r.data_dir}", f"--conf={r.data_dir}/i2pd.conf", *extra),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_router_child,
            )
            log.close()

    def start(self, timeout: float = 120) -> float:
        """Bring the network up; seconds it took."""
        started = time.monotonic()
        self.holder = subprocess.Popen(
            ["unshare", "-n", "sleep", "infinity"], preexec_fn=_die_with_parent
        )
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{self.holder.pid}/ns/net") == mine:
            if time.monotonic() > deadline:
                raise RuntimeError("the network namespace was not made")
            time.sleep(0.02)
        subprocess.run(self._ns("ip", "link", "set", "lo", "up"), check=True)
        for r in self.routers:
            subprocess.run(
                self._ns("ip", "addr", "add", f"198.18.0.{r.index + 1}/32", "dev", "lo"), check=True
            )
        self._start_routers("--http.enabled=false", "--sam.enabled=false")  # keys only
        deadline = time.monotonic() + 20
        while not all((r.data_dir / "router.info").exists() for r in self.routers):
            if time.monotonic() > deadline:
                raise RuntimeError("the i2pd routers made no router.info")
            time.sleep(0.1)
        time.sleep(1)
        self._stop_routers()
        infos = [(r.data_dir / "router.info").read_bytes() for r in self.routers]
        for r in self.routers:
            for j, info in enumerate(infos):
                if j != r.index:
                    h = ident_b64(info)
                    sub = r.data_dir / "netDb" / f"r{h[0]}"
                    sub.mkdir(parents=True, exist_ok=True)
                    (sub / f"routerInfo-{h}.dat").write_bytes(info)
        self._start_routers()
        self._start_relay()
        deadline = time.monotonic() + timeout
        while not self.ready():
            dead = [r.index for r in self.routers if r.process and r.process.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise TimeoutError(f"the I2P network is not ready (dead routers: {dead})")
            time.sleep(1)
        return time.monotonic() - started

    def _start_relay(self) -> None:
        maps = []
        for r in self.routers:
            maps += [f"{self.sam_port(r.index)}:{r.sam}", f"{self.console_port(r.index)}:{r.http}"]
        assert self.holder is not None
        self.relay = subprocess.Popen(
            [sys.executable, str(RELAY), str(self.holder.pid), *maps],
            stdout=subprocess.PIPE,
            preexec_fn=_router_child,  # the host's path to the routers: part of the network
        )
        assert self.relay.stdout is not None
        if self.relay.stdout.readline().strip() != b"ready":
            raise RuntimeError("the SAM relay did not start")

    def console(self, i: int) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.console_port(i)}/"
        try:
            page = urllib.request.urlopen(url, timeout=3).read().decode("utf-8", "replace")
        except OSError:
            return {}
        page = re.sub(r"(?s)<style.*?</style>", "", page)
        text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<br>|</tr>|</div>", "\n", page)))
        found = {}
        for line in text.splitlines():
            line = " ".join(line.split())
            if m := re.match(r"Tunnel creation success rate: (\d+)%", line):
                found["success"] = int(m.group(1))
            if m := re.match(r"Client Tunnels: (\d+) Transit Tunnels: (\d+)", line):
                found["client_tunnels"] = int(m.group(1))
        return found

    def ready(self) -> bool:
        for r in self.routers:
            info = self.console(r.index)
            if info.get("success", 0) == 0 or info.get("client_tunnels", 0) < 4:
                return False
        return True

    def alive(self) -> list[int]:
        return [r.index for r in self.routers if r.process and r.process.poll() is None]

    def stop_router(self, i: int) -> None:
        self._stop(self.routers[i].process, str(self.routers[i].data_dir))

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes] | None, mark: str) -> None:
        if proc is None or proc.poll() is not None:
            return
        try:  # ours: its command line names our directory
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if not cmdline:  # exiting since the poll (its memory is gone): reap our child
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()  # still our unreaped child: its PID is not anyone else's
                proc.wait(5)
            return
        if mark.encode() not in cmdline:
            return
        proc.send_signal(signal.SIGTERM)  # SIGINT would wait for transit tunnels
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def _stop_routers(self) -> None:
        for r in self.routers:
            if r.process is not None and r.process.poll() is None:
                r.process.send_signal(signal.SIGTERM)
        for r in self.routers:
            self._stop(r.process, str(r.data_dir))

    def stop(self) -> None:
        self._stop(self.relay, str(RELAY))
        if self.relay is not None and self.relay.stdout is not None:
            self.relay.stdout.close()
        self._stop_routers()
        self._stop(self.holder, "infinity")
