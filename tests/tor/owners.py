"""Which process owns each TCP connection to some ports, watched as it happens.

Tor does not apply ``OutboundBindAddress`` to loopback destinations (it skips
the bind for 127.0.0.0/8), so on a loopback test network the source address
cannot tell an exit's connection from a direct one. The kernel can: every
socket in ``/proc/net/tcp`` has an inode, and ``/proc/PID/fd`` shows which
process holds it. ``OwnerWatcher`` samples both every few milliseconds while
it runs and records, for each connection to the watched ports, the local
port it came from and the PID that held it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType


def _sockets_to(ports: set[int]) -> dict[str, int]:
    """{inode: local port} of TCP sockets (IPv4 and IPv6) whose remote port is watched."""
    found: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(remote.rsplit(":", 1)[1], 16) in ports and inode != "0":
                found[inode] = int(local.rsplit(":", 1)[1], 16)
    return found


def _inodes_of(pid: int) -> set[str]:
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


class OwnerWatcher:
    """``with OwnerWatcher(ports, pids) as w: ...`` then ``w.owner_of[local port]``."""

    def __init__(self, ports: set[int], pids: dict[int, str], interval: float = 0.005) -> None:
        self.ports, self.pids, self.interval = ports, pids, interval
        self.owner_of: dict[int, str] = {}  # local port -> name of the owning process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        sockets = _sockets_to(self.ports)
        if not sockets:
            return
        for pid, name in self.pids.items():
            for inode in _inodes_of(pid) & sockets.keys():
                self.owner_of[sockets[inode]] = name

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> OwnerWatcher:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
