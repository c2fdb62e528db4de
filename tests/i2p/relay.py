"""TCP relay from this network namespace into the I2P test network's namespace.

usage: relay.py NSPID HOST_PORT:NS_PORT [...]

Listens on 127.0.0.1:HOST_PORT here, then moves its one thread into the
namespace of process NSPID (``setns``), so each connection it makes to
127.0.0.1:NS_PORT reaches a router's SAM bridge or web console there. This
is the machine's "local router" for veil processes outside the namespace.
Prints ``ready`` when listening. Needs root (CAP_SYS_ADMIN).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000


def enter_namespace(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


def handler(port: int):  # type: ignore[no-untyped-def]
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            remote_r, remote_w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, remote_w), pipe(remote_r, client_w))

    return handle


async def main() -> None:
    pid = int(sys.argv[1])
    listening = []
    for pair in sys.argv[2:]:
        host_port, ns_port = (int(x) for x in pair.split(":"))
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", host_port))
        s.listen(128)
        s.setblocking(False)
        listening.append((s, ns_port))
    enter_namespace(pid)  # sockets made from now on live in the test network
    servers = [await asyncio.start_server(handler(p), sock=s) for s, p in listening]
    print("ready", flush=True)
    await asyncio.gather(*(srv.serve_forever() for srv in servers))


if __name__ == "__main__":
    asyncio.run(main())
