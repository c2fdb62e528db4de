"""The machine's limit for a put or get: the primitives alone, timed here.

A k-of-N put of S bytes cannot cost less than the work the format and the
transport require, whatever the implementation:

    SHA-256         convergence key (S), crypttext hash (S), crypttext segment
                    hashes (S), block hashes over every share (S*N/k)
    AES-CTR         S
    erasure coding  S in, S*N/k out
    TLS             S*N/k encrypted by the client and decrypted by the servers,
                    through loopback sockets (one connection, large writes)
    disk            S*N/k written to the page cache and fsynced

and a get (primary shares, so no decoding) needs TLS for S, block hashes over
S, crypttext segment hashes over S, AES-CTR over S and S written to a file.

``limit(size, k, n)`` times each primitive on this machine (best of a few
runs, one core each) and returns the CPU-seconds per operation; spread over
the cores, that gives the best throughput any client/server pair could reach
here (``limit_mb_s``). bench/compare.py prints each large-file row as a
fraction of it. Run alone: ``.venv/bin/python bench/limit.py [--mib 100]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from veil.adapters.http.tls import create_identity, server_context  # noqa: E402
from veil.codec import make_codec  # noqa: E402
from veil.formats.crypto import ctr_cipher  # noqa: E402

MiB = 1024 * 1024
SEGMENT = 1024 * 1024  # Tahoe's default maximum segment size
CHUNK = 256 * 1024  # what a client writes at a time


def best_of(runs: int, f: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def sha256_seconds(data: memoryview, chunk: int) -> float:
    def run() -> None:
        h = hashlib.sha256()
        for i in range(0, len(data), chunk):
            h.update(data[i : i + chunk])
        h.digest()

    return best_of(3, run)


def aes_seconds(data: memoryview) -> float:
    def run() -> None:
        enc = ctr_cipher(b"k" * 16)
        for i in range(0, len(data), SEGMENT):
            enc.update(data[i : i + SEGMENT])

    return best_of(3, run)


def coding_seconds(data: memoryview, k: int, n: int) -> float:
    codec = make_codec(k, n)
    seg = SEGMENT - SEGMENT % k

    def run() -> None:
        for i in range(0, len(data) - seg + 1, seg):
            codec.encode_segment(data[i : i + seg])

    per_seg = best_of(3, run) / max(1, len(data) // seg)
    return per_seg * len(data) / seg


def tls_seconds(nbytes: int) -> float:
    """Send ``nbytes`` through TLS over loopback; CPU-seconds of both ends."""
    with tempfile.TemporaryDirectory() as tmp:
        key, cert = Path(tmp) / "key.pem", Path(tmp) / "cert.pem"
        create_identity(key, cert)
        sctx = server_context(key, cert)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = [0]

    def serve() -> None:
        conn, _ = listener.accept()
        with sctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=True) as tls:
            buf = bytearray(CHUNK * 4)
            while received[0] < nbytes and (got := tls.recv_into(buf)) > 0:
                received[0] += got

    block = os.urandom(CHUNK)
    thread = threading.Thread(target=serve)
    thread.start()
    cpu = time.process_time()
    with cctx.wrap_socket(socket.create_connection(("127.0.0.1", port))) as tls:
        sent = 0
        while sent < nbytes:
            piece = block[: nbytes - sent]
            tls.sendall(piece)
            sent += len(piece)
        thread.join()
    listener.close()
    return time.process_time() - cpu


def disk_seconds(nbytes: int, files: int) -> float:
    """Write ``nbytes`` into ``files`` files and fsync each (CPU-seconds)."""
    block = os.urandom(CHUNK)
    with tempfile.TemporaryDirectory(dir=os.environ.get("VEIL_BENCH_TMP")) as tmp:
        start = time.process_time()
        per_file = nbytes // files
        for i in range(files):
            with open(Path(tmp) / str(i), "wb") as f:
                for _ in range(0, per_file, CHUNK):
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
        return time.process_time() - start


@dataclass(frozen=True)
class Limit:
    """CPU-seconds per operation for ``size`` bytes, and what they allow here."""

    size: int
    put_parts: dict[str, float]
    get_parts: dict[str, float]
    cores: int

    @property
    def put_seconds(self) -> float:
        return sum(self.put_parts.values())

    @property
    def get_seconds(self) -> float:
        return sum(self.get_parts.values())

    def limit_mb_s(self, what: str) -> float:
        seconds = self.put_seconds if what == "put" else self.get_seconds
        return self.size / 1e6 / (seconds / self.cores)


def limit(size: int, k: int = 3, n: int = 10, sample: int = 64 * MiB) -> Limit:
    """Time the primitives on ``min(size, sample)`` bytes and scale to ``size``."""
    measured = min(size, sample)
    data = memoryview(os.urandom(measured))
    scale = size / measured
    expansion = n / k
    sha = sha256_seconds(data, CHUNK) * scale
    sha_blocks = sha256_seconds(data, SEGMENT // k) * scale
    aes = aes_seconds(data) * scale
    put_tls = tls_seconds(int(measured * expansion)) * scale
    get_tls = tls_seconds(measured) * scale
    put = {
        "sha256 (3 passes over the file)": 3 * sha,
        "sha256 (block hashes, N/k passes)": expansion * sha_blocks,
        "aes-ctr": aes,
        "erasure coding": coding_seconds(data, k, n) * scale,
        "tls both ends (N/k of the file)": put_tls,
        "disk writes + fsync (N/k of the file)": disk_seconds(int(measured * expansion), n) * scale,
    }
    get = {
        "sha256 (block hashes + segment hashes)": 2 * sha_blocks,
        "aes-ctr": aes,
        "tls both ends (the file)": get_tls,
        "disk write + fsync (the file)": disk_seconds(measured, 1) * scale,
    }
    return Limit(size, put, get, os.cpu_count() or 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=100)
    opts = ap.parse_args()
    lim = limit(opts.mib * MiB)
    for what, parts in (("put", lim.put_parts), ("get", lim.get_parts)):
        print(f"{what} {opts.mib} MiB, 3-of-10:")
        for name, secs in parts.items():
            print(f"  {name:42s} {secs:6.3f} CPU-s")
        print(f"  {'limit on ' + str(lim.cores) + ' cores':42s} {lim.limit_mb_s(what):6.1f} MB/s")


if __name__ == "__main__":
    main()
