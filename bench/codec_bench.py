"""Erasure-coding throughput of each back-end (a script, never a timed test).

    .venv/bin/python bench/codec_bench.py [--k 3] [--n 10] [--segment 1048576] [--seconds 1]

Prints MB/s (10^6 bytes of segment data per second) for encode_segment, for
decode with one and with all primary blocks missing, and for encode from two
threads at once (ISA-L runs without the GIL), then the isal/zfec ratios.
The segment is rounded up to a multiple of k, as Tahoe does.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from veil.codec import ErasureCodec, available_backends, make_codec


def rate(work: Callable[[], object], nbytes: int, seconds: float) -> float:
    """MB/s of ``work`` (which handles ``nbytes`` per call), best of three runs."""
    work()  # warm up: tables, allocator
    best = 0.0
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            work()
            calls += 1
        best = max(best, calls * nbytes / elapsed / 1e6)
    return best


def threaded_rate(codec: ErasureCodec, segment: bytes, seconds: float, threads: int) -> float:
    """MB/s of ``threads`` threads encoding at once, each dropping its blocks."""
    per_thread = max(4, int(seconds * 1000 / threads))

    def worker() -> None:
        for _ in range(per_thread):
            codec.encode_segment(segment)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: codec.encode_segment(segment), range(threads)))
        start = time.perf_counter()
        for job in [pool.submit(worker) for _ in range(threads)]:
            job.result()
        elapsed = time.perf_counter() - start
    return threads * per_thread * len(segment) / elapsed / 1e6


def measure(codec: ErasureCodec, segment: bytes, seconds: float) -> list[float]:
    """encode, decode (one / all primaries missing) and two-thread encode, in MB/s."""
    k, n, size = codec.k, codec.n, len(segment)
    blocks = [bytes(b) for b in codec.encode_segment(segment)]  # as a download has them
    one_missing = [0, *range(2, k), n - 1]  # primary 1 lost
    all_missing = list(range(n - k, n)) if n >= 2 * k else list(range(k - 1, 2 * k - 1))

    def decode(shares: list[int]) -> Callable[[], object]:
        return lambda: codec.decode([blocks[s] for s in shares], shares)

    return [
        rate(lambda: codec.encode_segment(segment), size, seconds),
        rate(decode(one_missing), size, seconds),
        rate(decode(all_missing), size, seconds),
        threaded_rate(codec, segment, seconds, 2),
    ]


def raise_malloc_thresholds() -> bool:
    """Stop glibc from returning freed block memory to the kernel after every segment.

    Same effect as MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_MMAP_THRESHOLD_=33554432.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_trim_threshold, 256 << 20)) and bool(
            libc.mallopt(m_mmap_threshold, 32 << 20)
        )
    except (OSError, AttributeError):
        return False


def table(k: int, n: int, segment: bytes, seconds: float) -> None:
    print(
        f"{'backend':9} {'encode':>8} {'dec 1 miss':>11} {'dec all miss':>13} {'encode 2 thr':>13}"
    )
    results = {}
    for backend in available_backends():
        row = measure(make_codec(k, n, backend=backend), segment, seconds)
        results[backend] = row
        print(f"{backend:9} {row[0]:8.0f} {row[1]:11.0f} {row[2]:13.0f} {row[3]:13.0f}")
    if "isal" in results:
        r = [a / b for a, b in zip(results["isal"], results["zfec"], strict=True)]
        print(f"{'isal/zfec':9} {r[0]:7.1f}x {r[1]:10.1f}x {r[2]:12.1f}x {r[3]:12.1f}x")
    else:
        print("isal/zfec: ISA-L is not available here; only zfec was measured")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--segment", type=int, default=1 << 20)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    size = -(-args.segment // args.k) * args.k
    segment = os.urandom(size)
    print(f"{args.k}-of-{args.n}, segment {size} bytes, MB/s of segment data (best of 3)")
    print("\nglibc malloc defaults:")
    table(args.k, args.n, segment, args.seconds)
    if raise_malloc_thresholds():
        print("\nglibc trim/mmap thresholds raised (freed blocks reused, no page faults):")
        table(args.k, args.n, segment, args.seconds)


if __name__ == "__main__":
    main()
