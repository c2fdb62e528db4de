"""A packet capture of every TCP byte in this network namespace, until SIGTERM.

Run as ``ip netns exec NS python capture.py OUT``: a raw ``AF_PACKET`` socket
(root only) sees each frame on each interface, so this records what really
crossed the wire, not what a program says it sent. On SIGTERM it writes OUT:
for every TCP flow, its payload reassembled in sequence order (duplicates
dropped), flows separated by a line of 64 zero bytes.
"""

from __future__ import annotations

import select
import signal
import socket
import sys

ETH_P_ALL = 0x0003
stop = False


def _on_term(signum: int, frame: object) -> None:
    global stop
    stop = True


def _tcp(frame: bytes) -> tuple[tuple[bytes, int, bytes, int], int, bytes] | None:
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl, total = (ip[0] & 0x0F) * 4, int.from_bytes(ip[2:4], "big")
    if ip[9] != 6:
        return None
    tcp = ip[ihl:total] if total else ip[ihl:]
    if len(tcp) < 20:
        return None
    offset = (tcp[12] >> 4) * 4
    flow = (ip[12:16], int.from_bytes(tcp[0:2], "big"), ip[16:20], int.from_bytes(tcp[2:4], "big"))
    return flow, int.from_bytes(tcp[4:8], "big"), bytes(tcp[offset:])


def main(out: str) -> None:
    signal.signal(signal.SIGTERM, _on_term)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    flows: dict[tuple[bytes, int, bytes, int], dict[int, bytes]] = {}
    with open(out + ".ready", "w"):
        pass
    while not stop:
        ready, _, _ = select.select([sock], [], [], 0.1)
        while ready:
            try:
                frame = sock.recv(262144, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            parsed = _tcp(frame)
            if parsed and parsed[2]:
                flow, seq, payload = parsed
                segs = flows.setdefault(flow, {})
                if len(payload) > len(segs.get(seq, b"")):
                    segs[seq] = payload
    with open(out, "wb") as f:
        for segs in flows.values():
            data, end = bytearray(), None
            for seq in sorted(segs):
                payload = segs[seq]
                if end is not None and seq < end:  # overlap: keep the new tail only
                    payload = payload[end - seq :]
                data += payload
                end = seq + len(segs[seq]) if end is None else max(end, seq + len(segs[seq]))
            f.write(bytes(data) + b"\0" * 64)


if __name__ == "__main__":
    main(sys.argv[1])
