"""A packet capture for leak tests: every TCP connection attempt and every
DNS packet on every interface of this network namespace, while it runs.

Uses a raw ``AF_PACKET`` socket (root only), so it sees real traffic, not
what veil says it did. Parses just enough of Ethernet/loopback, IPv4, IPv6,
TCP and UDP headers to record (source, destination) of each TCP SYN and of
each packet to or from port 53.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import threading
from dataclasses import dataclass
from types import TracebackType

ETH_P_ALL = 0x0003
ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
TCP, UDP = 6, 17
SYN, ACK = 0x02, 0x10


@dataclass(frozen=True)
class Seen:
    proto: str  # "tcp-syn" or "dns"
    src: str
    sport: int
    dst: str
    dport: int


def _parse(frame: bytes, hatype: int) -> Seen | None:
    if hatype not in (ARPHRD_ETHER, ARPHRD_LOOPBACK) or len(frame) < 14:
        return None
    ethertype = int.from_bytes(frame[12:14], "big")
    ip = frame[14:]
    if ethertype == ETHERTYPE_IPV4 and len(ip) >= 20:
        header = (ip[0] & 0x0F) * 4
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
    elif ethertype == ETHERTYPE_IPV6 and len(ip) >= 40:
        header, proto, src, dst = 40, ip[6], ip[8:24], ip[24:40]
    else:
        return None
    l4 = ip[header:]
    if proto not in (TCP, UDP) or len(l4) < 8:
        return None
    sport, dport = int.from_bytes(l4[0:2], "big"), int.from_bytes(l4[2:4], "big")
    src_text = str(ipaddress.ip_address(src))
    dst_text = str(ipaddress.ip_address(dst))
    if 53 in (sport, dport):
        return Seen("dns", src_text, sport, dst_text, dport)
    if proto == TCP and len(l4) >= 14 and l4[13] & SYN and not l4[13] & ACK:
        return Seen("tcp-syn", src_text, sport, dst_text, dport)
    return None


class Sniffer:
    """``with Sniffer() as s: ...``, then ``s.syns_to(ports)`` and ``s.dns``."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the leak tests capture packets and must run as root")
        self.seen: list[Seen] = []
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setblocking(False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.1)
            if not ready:
                continue
            while True:
                try:
                    frame, addr = self._sock.recvfrom(65535)
                except BlockingIOError:
                    break
                seen = _parse(frame, addr[3])
                if seen is not None:
                    self.seen.append(seen)

    def __enter__(self) -> Sniffer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def syns_to(self, ports: set[int]) -> list[Seen]:
        return [s for s in self.seen if s.proto == "tcp-syn" and s.dport in ports]

    @property
    def dns(self) -> list[Seen]:
        return [s for s in self.seen if s.proto == "dns"]
