"""Benchmark a local veil grid: 10 storage servers, 3-of-10, on loopback.

Prints MB/s for put and get of a large file through the CLI, files/s for many
small files (through the CLI, and through the Python API in one process),
and the peak memory of the client and of a storage server. Not a test: run it
by hand, ``.venv/bin/python bench/grid_bench.py [--size-mib 100] [--files 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import timed, veil_grid  # noqa: E402


def server_peak_kib(grid: Path) -> int:
    peak = 0
    for pidfile in grid.glob("storage-*/veil.pid"):
        pid = pidfile.read_text().strip()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            pass
    return peak


async def api_small_files(client_dir: Path, files: list[bytes], concurrency: int) -> float:
    from veil.adapters.node.client_session import open_client
    from veil.formats.caps import parse_read_cap

    sem = asyncio.Semaphore(concurrency)
    start = time.perf_counter()
    async with open_client(client_dir) as client:
        uploader = client.uploader()

        async def one(data: bytes) -> str:
            async with sem:
                return (await uploader.upload_bytes(data)).cap.to_string()

        caps = await asyncio.gather(*(one(d) for d in files))
        downloader = client.downloader()
        for cap_text, data in zip(caps[:50], files[:50], strict=True):
            got = await downloader.download_bytes(parse_read_cap(cap_text))
            if got != data:
                raise SystemExit("small file came back different")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=100)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--cli-files", type=int, default=50)
    ap.add_argument("--servers", type=int, default=10)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as tmp:
        grid = Path(tmp) / "grid"
        rows: list[tuple[str, str]] = []
        with veil_grid(grid, opts.servers) as client:
            big = Path(tmp) / "big.bin"
            with open(big, "wb") as f:
                chunk = os.urandom(1 << 20)
                for i in range(opts.size_mib):
                    f.write(chunk[i:] + chunk[:i])
            size_mb = opts.size_mib * 1048576 / 1e6
            t, rss_put, out = timed([*VEIL, "-d", str(client), "put", str(big)])
            cap = out.decode().strip()
            rows.append((f"put {opts.size_mib} MiB (CLI)", f"{size_mb / t:8.1f} MB/s  ({t:.2f} s)"))
            back = Path(tmp) / "back.bin"
            t, rss_get, _ = timed([*VEIL, "-d", str(client), "get", cap, str(back)])
            rows.append((f"get {opts.size_mib} MiB (CLI)", f"{size_mb / t:8.1f} MB/s  ({t:.2f} s)"))
            same = subprocess.run(["cmp", "-s", str(big), str(back)]).returncode == 0
            rows.append(("bytes match", str(same)))
            rows.append(
                ("client peak RSS put/get", f"{rss_put / 1024:.0f} / {rss_get / 1024:.0f} MiB")
            )
            small = [os.urandom(4096) for _ in range(opts.files)]
            srcs = []
            for i, data in enumerate(small[: opts.cli_files]):
                p = Path(tmp) / f"small{i}"
                p.write_bytes(data)
                srcs.append(p)
            start = time.perf_counter()
            for p in srcs:
                timed([*VEIL, "-d", str(client), "put", str(p)])
            t = time.perf_counter() - start
            rows.append(
                (
                    f"{len(srcs)} x 4 KiB put (CLI, one process each)",
                    f"{len(srcs) / t:8.1f} files/s",
                )
            )
            for conc in (1, 16):
                t = asyncio.run(api_small_files(client, small, conc))
                rows.append(
                    (
                        f"{opts.files} x 4 KiB put (API, {conc} at a time)",
                        f"{opts.files / t:8.1f} files/s",
                    )
                )
            t, _, _ = timed([*VEIL, "--version"])
            rows.append(("CLI start-up (veil --version)", f"{t * 1000:8.0f} ms"))
            rows.append(("storage server peak RSS", f"{server_peak_kib(grid) / 1024:.0f} MiB"))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
