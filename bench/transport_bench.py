"""Is the TLS/HTTP transport the wall of a large get? The same bytes read three ways.

Starts a veil grid (10 servers, 3-of-10), puts a file, and reads the three
primary shares of it, a third of a segment per request as the downloader
does, from the three servers that hold them, with nothing else done to the
bytes:

    aiohttp    the storage client's stack (aiohttp on uvloop, 4 requests in
               flight per server)
    threads    blocking ``ssl`` sockets, one ``http.client`` connection per
               server in its own thread, ``readinto`` a reused buffer

and then through veil's downloader in one process (hashing, decoding,
decrypting), so the difference between the rows is veil's own per-block work.
Prints wall and client CPU seconds per run (median of ``--runs``). Not a test:
``.venv/bin/python bench/transport_bench.py [--mib 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import VEIL, veil_grid

MiB = 1024 * 1024
IN_FLIGHT = 4


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def unverified() -> ssl.SSLContext:
    """The bytes, not the pinning, are measured here (veil pins the SPKI hash)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


Target = tuple[str, int, str, str, int, int]  # host, port, authorization, si, shnum, size


def read_in_threads(targets: list[Target], block: int) -> None:
    def one(host: str, port: int, auth: str, si: str, shnum: int, size: int) -> None:
        conn = http.client.HTTPSConnection(host, port, context=unverified())
        buf = memoryview(bytearray(block))
        for offset in range(0, size, block):
            n = min(block, size - offset)
            headers = {"Authorization": auth, "Range": f"bytes={offset}-{offset + n - 1}"}
            conn.request("GET", f"/storage/v1/immutable/{si}/{shnum}", headers=headers)
            answer = conn.getresponse()
            got = 0
            while got < n and (k := answer.readinto(buf[got:n])):
                got += k
            answer.read()
            if got != n:
                raise SystemExit(f"share {shnum}: a short read")
        conn.close()

    threads = [threading.Thread(target=one, args=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


async def read_with_aiohttp(targets: list[Target], block: int) -> None:
    import aiohttp

    async def one(host: str, port: int, auth: str, si: str, shnum: int, size: int) -> None:
        connector = aiohttp.TCPConnector(ssl=unverified())
        async with aiohttp.ClientSession(connector=connector, headers={"Authorization": auth}) as s:
            gate = asyncio.Semaphore(IN_FLIGHT)
            url = f"https://{host}:{port}/storage/v1/immutable/{si}/{shnum}"

            async def part(offset: int) -> None:
                n = min(block, size - offset)
                async with (
                    gate,
                    s.get(url, headers={"Range": f"bytes={offset}-{offset + n - 1}"}) as r,
                ):
                    if len(await r.read()) != n:
                        raise SystemExit(f"share {shnum}: a short read")

            await asyncio.gather(*(part(o) for o in range(0, size, block)))

    await asyncio.gather(*(one(*t) for t in targets))


async def primary_shares(client: Path, cap_text: str) -> tuple[list[Target], int]:
    from veil.adapters.node.client_session import open_client
    from veil.formats import base32
    from veil.formats.caps import CHKReadCap, parse_read_cap
    from veil.formats.params import FileGeometry

    cap = parse_read_cap(cap_text)
    assert isinstance(cap, CHKReadCap)
    si = base32.b2a(cap.storage_index)
    targets: list[Target] = []
    async with open_client(client) as c:
        for server in c.broker.servers:
            held = await server.list_shares(cap.storage_index)
            for shnum in sorted(held & set(range(cap.needed_shares))):
                nurl = server.nurl  # type: ignore[attr-defined]
                size = -(-cap.size // cap.needed_shares)  # the share's blocks, about
                targets.append((nurl.host, nurl.port, nurl.authorization, si, shnum, size))
        geometry = FileGeometry.for_upload(
            cap.size, cap.needed_shares, cap.total_shares, c.params.max_segment_size
        )
    targets = sorted({t[4]: t for t in targets}.values(), key=lambda t: t[4])
    return targets, geometry.segment_size // cap.needed_shares


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args()
    import uvloop

    with tempfile.TemporaryDirectory(prefix="veil-transport-") as tmp:
        grid = Path(tmp) / "g"
        with veil_grid(grid):
            src = Path(tmp) / "f.bin"
            src.write_bytes(os.urandom(opts.mib * MiB))
            put = [*VEIL, "-d", str(grid / "client"), "put", str(src)]
            cap = subprocess.run(put, check=True, capture_output=True).stdout.decode().strip()
            targets, block = uvloop.run(primary_shares(grid / "client", cap))

            async def downloader() -> None:
                from veil.adapters.node.client_session import open_client
                from veil.formats.caps import parse_read_cap

                async with open_client(grid / "client") as c:
                    async for _ in c.downloader().stream(parse_read_cap(cap)):  # type: ignore[arg-type]
                        pass

            ways: list[tuple[str, Callable[[], object]]] = [
                (
                    "aiohttp + uvloop, bytes only",
                    lambda: uvloop.run(read_with_aiohttp(targets, block)),
                ),
                ("ssl sockets in threads, bytes only", lambda: read_in_threads(targets, block)),
                ("veil's downloader (one process)", lambda: uvloop.run(downloader())),
            ]
            print(f"reading the 3 primary shares of a {opts.mib} MiB file, {block} B a request")
            for name, way in ways:
                walls, cpus = [], []
                for _ in range(opts.runs):
                    c0, t0 = cpu(), time.perf_counter()
                    way()
                    walls.append(time.perf_counter() - t0)
                    cpus.append(cpu() - c0)
                wall, used = statistics.median(walls), statistics.median(cpus)
                mb_s = opts.mib * MiB / 1e6 / wall
                print(f"  {name:38s} {wall:6.2f} s  {used:5.2f} client CPU-s  {mb_s:7.1f} MB/s")


if __name__ == "__main__":
    sys.exit(main())
