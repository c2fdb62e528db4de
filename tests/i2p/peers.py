"""Every TCP peer a process talks to, read from the kernel while it runs.

``PeerWatcher`` samples ``/proc/net/tcp`` (and tcp6) every few milliseconds
and, for each socket held by a watched PID (``/proc/PID/fd``), records the
remote address and port: what the process really connected to, whatever it
says. Used with the packet capture (``tests/tor/sniffer.py``) for DNS.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from pathlib import Path
from types import TracebackType


def _address(hex_text: str) -> str:
    host, port = hex_text.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return f"{ipaddress.IPv4Address(raw[::-1])}:{int(port, 16)}"
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return f"[{ipaddress.IPv6Address(words)}]:{int(port, 16)}"


def _sockets() -> dict[str, str]:
    """{inode: remote address} of every TCP socket with a peer."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] != "0" and not fields[2].endswith(":0000"):
                found[fields[9]] = _address(fields[2])
    return found


class PeerWatcher:
    """``with PeerWatcher() as w: w.pids.add(pid) ...`` then ``w.peers``."""

    def __init__(self, interval: float = 0.002) -> None:
        self.pids: set[int] = set()
        self.peers: set[str] = set()
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sockets = _sockets()
            for pid in list(self.pids):
                try:
                    for fd in os.listdir(f"/proc/{pid}/fd"):
                        link = os.readlink(f"/proc/{pid}/fd/{fd}")
                        if link.startswith("socket:[") and link[8:-1] in sockets:
                            self.peers.add(sockets[link[8:-1]])
                except OSError:
                    continue
            self._stop.wait(self.interval)

    def __enter__(self) -> PeerWatcher:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
