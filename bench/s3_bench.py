"""Benchmark a veil storage server on S3 against the same server on disk.

One run, same machine, same moment: SeaweedFS (``weed mini``) on loopback,
two ``veil run`` storage servers (``[storage] backend = s3`` and ``disk``),
and one veil client per server (2-of-3, happy 1: all three shares on the one
server, so a put of N MiB stores 1.5 N MiB). Prints MB/s for a put and a get
of ``--size-mib`` (default 100) through each, then the S3 requests each share
costs when written by the storage core straight onto ``S3Backend`` (shares of
1 KiB, 1 MiB and 50 MiB, the size of this put's shares), by operation.

Not a test: run it by hand, ``.venv/bin/python bench/s3_bench.py [--size-mib 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.s3.s3_node import S3StorageNode, client_node  # noqa: E402

from veil.adapters.node.client_session import open_client  # noqa: E402
from veil.adapters.node.nodedir import NodeDirectory  # noqa: E402
from veil.adapters.storage.lease_index import MemoryLeaseIndex  # noqa: E402
from veil.adapters.storage.s3 import S3Backend  # noqa: E402
from veil.formats.caps import parse_read_cap  # noqa: E402
from veil.services.storage.expiry import ExpiryPolicy, LeaseExpirer  # noqa: E402
from veil.services.storage.server import StorageServer  # noqa: E402
from veil.testing.seaweedfs import SeaweedFS  # noqa: E402

MB = 1_000_000


async def put_get(client: Path, data: bytes) -> tuple[float, float]:
    async with open_client(client) as c:
        start = time.perf_counter()
        cap = (await c.uploader().upload_bytes(data)).cap
        put = time.perf_counter() - start
    async with open_client(client) as c:
        start = time.perf_counter()
        back = await c.downloader().download_bytes(parse_read_cap(cap.to_string()))
        get = time.perf_counter() - start
    assert back == data
    return put, get


def requests_per_share(seaweedfs: SeaweedFS, size: int, indexed: bool) -> Counter[str]:
    """S3 requests for one share of ``size`` bytes: allocate, 1 MiB writes, done;
    ``indexed``: with the lease index following every change, as in ``veil run``."""
    backend = S3Backend(seaweedfs.settings(f"bench-{os.urandom(4).hex()}"))
    try:
        server = StorageServer(backend=backend)
        if indexed:
            expirer = LeaseExpirer(
                backend, MemoryLeaseIndex(), ExpiryPolicy(), lock=server.lease_lock
            )
            server.lease_observer = expirer.refresh
        si, data, secret = os.urandom(16), os.urandom(size), b"u" * 32
        backend.s3.requests.clear()
        server.allocate_buckets(
            si,
            frozenset({0}),
            size,
            renew_secret=secret,
            cancel_secret=secret,
            upload_secret=secret,
        )
        for begin in range(0, size, 1 << 20):
            server.write_share_chunk(
                si, 0, begin, data[begin : begin + (1 << 20)], upload_secret=secret
            )
        return Counter(backend.s3.requests)
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=100)
    args = parser.parse_args()
    data = os.urandom(args.size_mib * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seaweedfs = SeaweedFS.start(root / "seaweedfs")
        nodes: list[S3StorageNode] = []
        try:
            s3_node = S3StorageNode.create(root / "s3-server", seaweedfs.settings("bench"))
            NodeDirectory.create(root / "disk-server", storage=True)
            disk_node = S3StorageNode(root / "disk-server")
            for node in (s3_node, disk_node):
                node.start()
                nodes.append(node)
            cores = os.cpu_count()
            print(f"put/get {args.size_mib} MiB, 2-of-3 on one server, loopback, {cores} cores")
            for name, node in (("disk", disk_node), ("s3", s3_node)):
                client = client_node(root / f"client-{name}", [node])
                put, get = asyncio.run(put_get(client, data))
                rate_put, rate_get = len(data) / MB / put, len(data) / MB / get
                rates = f"put {rate_put:6.1f} MB/s  get {rate_get:6.1f} MB/s"
                print(f"  {name:4}  {rates}")
            print("S3 requests per share written (allocate, 1 MiB chunks, complete):")
            for indexed in (False, True):
                print("  with the lease index (veil run):" if indexed else "  core alone:")
                for size in (1024, 1 << 20, 50 << 20):
                    counts = requests_per_share(seaweedfs, size, indexed)
                    detail = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
                    print(f"  {size:>10} bytes: {sum(counts.values())} ({detail})")
        finally:
            for node in nodes:
                node.stop()
            seaweedfs.stop()


if __name__ == "__main__":
    main()
