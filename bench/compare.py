"""veil against the real Tahoe-LAFS 1.20, side by side on this machine.

Starts a Tahoe grid and a veil grid of 10 storage servers each (3-of-10, on
loopback), runs the same workload through each, and prints medians over
``--runs`` runs with the ratio veil/Tahoe (for times: Tahoe/veil, so >1 means
veil is faster). Tahoe is measured with its default HTTP storage protocol and
with Foolscap forced. Not a test; run ``.venv/bin/python bench/compare.py``.
"""

from __future__ import annotations

import argparse
import compileall
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from limit import limit  # noqa: E402
from tests.interop.tahoe_harness import (  # noqa: E402
    TahoeNode,
    storage_announcement,
    tahoe_executable,
)

VEIL = [str(ROOT / ".venv" / "bin" / "veil")]
MiB = 1024 * 1024
TIME = Path("/usr/bin/time")


@contextmanager
def veil_grid(path: Path, servers: int = 10) -> Iterator[Path]:
    """``veil grid start`` of ``servers`` storage servers (3-of-10 by default) at
    ``path``, stopped (``veil grid stop``: by their PIDs) when done; yields the
    client's node directory."""
    subprocess.run(
        [*VEIL, "grid", "start", str(path), "--servers", str(servers)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield path / "client"
    finally:
        subprocess.run([*VEIL, "grid", "stop", str(path)], check=False, stdout=subprocess.DEVNULL)


def timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, int, bytes]:
    """Run a command; (seconds, peak RSS KiB of the command, stdout).

    The peak is read by /usr/bin/time: a child forked from this (large) process
    would otherwise report this process's memory as its own.
    """
    with tempfile.NamedTemporaryFile() as rss, tempfile.TemporaryFile() as err:
        wrapper = ["/usr/bin/time", "-f", "%M", "-o", rss.name] if TIME.exists() else []
        start = time.perf_counter()
        proc = subprocess.run([*wrapper, *args], stdout=subprocess.PIPE, stderr=err, env=env)
        elapsed = time.perf_counter() - start
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"failed: {' '.join(args)}\n{err.read().decode()[-500:]}")
        text = Path(rss.name).read_text().strip().splitlines()
    return elapsed, int(text[-1]) if text and text[-1].isdigit() else 0, proc.stdout


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total


def peak_rss_kib(pids: list[int]) -> int:
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str, str]] = []

    def add(
        self,
        name: str,
        veil: float,
        tahoe: float,
        foolscap: float | None,
        unit: str,
        higher_is_better: bool,
        limit: float | None = None,
    ) -> None:
        """One row, veil against the better of Tahoe's two protocols; ``limit`` (same
        unit) adds each side's fraction of the machine's limit."""
        if higher_is_better:
            best_tahoe = max(tahoe, foolscap or 0.0)
            ratio = veil / best_tahoe if best_tahoe else float("inf")
        else:
            best_tahoe = min(tahoe, foolscap or tahoe)
            ratio = best_tahoe / veil if veil else float("inf")
        fool = "" if foolscap is None else f"{foolscap:.2f}"
        of_limit = ""
        if limit:
            of_limit = f"{limit:.0f} {unit}: veil {veil / limit:.0%}, "
            of_limit += f"Tahoe {best_tahoe / limit:.0%}"
        self.rows.append(
            (name, f"{veil:.2f} {unit}", f"{tahoe:.2f} {unit}", fool, f"{ratio:.1f}x", of_limit)
        )

    def print(self) -> None:
        head = ("row", "veil", "Tahoe (HTTP)", "Tahoe (Foolscap)", "veil / Tahoe's best", "limit")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(6)]
        for r in [head, *self.rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def cpu_rows(
    table: Table,
    tmp: Path,
    vclient: str,
    veil_pids: list[int],
    http: TahoeNode,
    fool: TahoeNode,
    tahoe_pids: list[int],
    size: int,
) -> None:
    """Client and server CPU-seconds for one put and one get of ``size`` bytes.

    A command's CPU is its own (os.times of children) plus, for Tahoe, that of
    the client daemon the CLI talks to; servers are read from /proc.
    """
    src, dst = tmp / "cpu-src.bin", tmp / "cpu-dst.bin"
    src.write_bytes(os.urandom(size))
    hz = os.sysconf("SC_CLK_TCK")

    def run(cmd: list[str], servers: list[int], daemon: list[int]) -> tuple[float, float, str]:
        s0, d0, t0 = cpu_ticks(servers), cpu_ticks(daemon), os.times()
        done = subprocess.run(cmd, capture_output=True)  # Tahoe's get names its cap on stderr
        if done.returncode != 0:
            raise SystemExit(f"{cmd[0]} {cmd[-2]} failed: {done.stderr.decode()[-500:]}")
        out = done.stdout.decode().strip()
        t1 = os.times()
        own = t1.children_user + t1.children_system - t0.children_user - t0.children_system
        client = own + (cpu_ticks(daemon) - d0) / hz
        return client, (cpu_ticks(servers) - s0) / hz, out

    def measure(cli: list[str], servers: list[int], daemon: list[int]) -> dict[str, float]:
        pc, ps, cap = run([*cli, "put", str(src)], servers, daemon)
        gc, gs, _ = run([*cli, "get", cap, str(dst)], servers, daemon)
        return {"put client": pc, "put servers": ps, "get client": gc, "get servers": gs}

    daemons = {node.path: [node.proc.pid] if node.proc else [] for node in (http, fool)}
    servers = [p for p in tahoe_pids if [p] not in daemons.values()]
    veil = measure([*VEIL, "-d", vclient], veil_pids, [])
    tahoe = {
        node.path: measure([node.tahoe, "-d", str(node.path)], servers, daemons[node.path])
        for node in (http, fool)
    }
    for key in ("put client", "put servers", "get client", "get servers"):
        table.add(
            f"CPU-s per {size // MiB} MiB, {key}",
            veil[key],
            tahoe[http.path][key],
            tahoe[fool.path][key],
            "CPU-s",
            False,
        )


def median(f: Callable[[], float], runs: int) -> float:
    return statistics.median(f() for _ in range(runs))


def compile_sources() -> None:
    """Byte-compile veil's sources first, as ``pip install`` does for Tahoe's venv:
    with an editable install and PYTHONDONTWRITEBYTECODE set (this machine sets
    it), every veil command would otherwise compile ~90 modules (~0.25 s)."""
    compileall.compile_dir(str(ROOT / "src"), quiet=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes-mib", default="1,10,100,1024")
    ap.add_argument("--small-files", type=int, default=1000)
    ap.add_argument("--dir-files", type=int, default=1000, help="ls and cp -r rows")
    ap.add_argument("--mdmf-mib", type=int, default=100, help="file for the MDMF update row")
    ap.add_argument("--skip-dirs", action="store_true", help="leave out the directory rows")
    ap.add_argument("--skip-big", action="store_true", help="leave out the put/get rows")
    ap.add_argument("--skip-small", action="store_true", help="leave out the 4 KiB API rows")
    opts = ap.parse_args()
    compile_sources()
    # a SIGTERM (a time limit, a kill by PID) still stops both grids in the finally below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tahoe = tahoe_executable()
    table = Table()
    with tempfile.TemporaryDirectory(prefix="veil-compare-") as tmpdir:
        tmp = Path(tmpdir)
        # -- grids -------------------------------------------------------------
        subprocess.run(
            [*VEIL, "grid", "start", str(tmp / "veil"), "--servers", "10"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        vclient = str(tmp / "veil" / "client")
        tnodes = [TahoeNode.create_storage(tahoe, tmp / f"ts{i}") for i in range(10)]
        clients: list[TahoeNode] = []
        try:
            for n in tnodes:
                n.start()
            for n in tnodes:
                n.wait_ready()
            servers = dict(storage_announcement(n) for n in tnodes)
            http = TahoeNode.create_client(
                tahoe, tmp / "tc-http", needed=3, happy=7, total=10, servers=servers
            )
            fool = TahoeNode.create_client(
                tahoe, tmp / "tc-fool", needed=3, happy=7, total=10, servers=servers
            )
            cfg = (fool.path / "tahoe.cfg").read_text()
            (fool.path / "tahoe.cfg").write_text(
                cfg.replace("[client]\n", "[client]\nforce_foolscap = true\n", 1)
            )
            clients = [http, fool]
            for c in clients:
                c.start()
            for c in clients:
                c.wait_ready(connected_servers=10)
            veil_pids = [int(p.read_text()) for p in (tmp / "veil").glob("storage-*/veil.pid")]
            tahoe_pids = [n.proc.pid for n in tnodes if n.proc] + [
                c.proc.pid for c in clients if c.proc
            ]

            # -- start-up ------------------------------------------------------
            table.add(
                "CLI start-up (--version)",
                median(lambda: timed([*VEIL, "--version"])[0], 5),
                median(lambda: timed([tahoe, "--version"])[0], 5),
                None,
                "s",
                False,
            )

            # -- big files -----------------------------------------------------
            client_rss = {"veil": 0, "tahoe": 0}
            for size_mib in [] if opts.skip_big else [int(s) for s in opts.sizes_mib.split(",")]:
                size = size_mib * MiB

                def put_get(
                    kind: str, node: TahoeNode | None = None, size: int = size
                ) -> tuple[float, float]:
                    src = tmp / "src.bin"
                    src.write_bytes(os.urandom(size))
                    dst = tmp / "dst.bin"
                    if kind == "veil":
                        tp, rp, out = timed([*VEIL, "-d", vclient, "put", str(src)])
                        tg, rg, _ = timed(
                            [*VEIL, "-d", vclient, "get", out.decode().strip(), str(dst)]
                        )
                    else:
                        assert node is not None
                        tp, rp, out = timed([tahoe, "-d", str(node.path), "put", str(src)])
                        tg, rg, _ = timed(
                            [tahoe, "-d", str(node.path), "get", out.decode().strip(), str(dst)]
                        )
                    if dst.read_bytes() != src.read_bytes():
                        raise SystemExit(f"{kind}: downloaded bytes differ")
                    key = "veil" if kind == "veil" else "tahoe"
                    client_rss[key] = max(client_rss[key], rp, rg)
                    return size / 1e6 / tp, size / 1e6 / tg

                results = {
                    k: [put_get(k, n) for _ in range(opts.runs)]
                    for k, n in (("veil", None), ("tahoe", http), ("fool", fool))
                }
                from compare_dirs import running_node

                with running_node(vclient):  # the launcher hands put/get to it
                    results["node"] = [put_get("veil") for _ in range(opts.runs)]
                lim = limit(size) if size_mib >= 100 else None
                for i, what in ((0, "put"), (1, "get")):
                    med = {k: statistics.median(r[i] for r in v) for k, v in results.items()}
                    for veil_side, how in (("veil", ""), ("node", ", veil via its running node")):
                        table.add(
                            f"{what} {size_mib} MiB (CLI{how})",
                            med[veil_side],
                            med["tahoe"],
                            med["fool"],
                            "MB/s",
                            True,
                            lim.limit_mb_s(what) if lim else None,
                        )
                if size_mib == 100:
                    cpu_rows(table, tmp, vclient, veil_pids, http, fool, tahoe_pids, size)

            # -- small files ---------------------------------------------------
            n = opts.small_files
            files = [os.urandom(4096) for _ in range(n)]

            def veil_small(concurrency: int) -> float:
                import asyncio

                from veil.adapters.node.client_session import open_client

                async def run() -> float:
                    sem = asyncio.Semaphore(concurrency)
                    start = time.perf_counter()
                    async with open_client(Path(vclient)) as c:
                        up = c.uploader()

                        async def one(data: bytes) -> None:
                            async with sem:
                                await up.upload_bytes(os.urandom(8) + data[8:])

                        await asyncio.gather(*(one(d) for d in files))
                    return n / (time.perf_counter() - start)

                return asyncio.run(run())

            def tahoe_small(node: TahoeNode, concurrency: int) -> float:
                from concurrent.futures import ThreadPoolExecutor

                start = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    list(pool.map(lambda d: node.put(os.urandom(8) + d[8:]), files))
                return n / (time.perf_counter() - start)

            for conc in () if opts.skip_small else (1, 32):
                how = "one by one" if conc == 1 else f"{conc} at a time"
                table.add(
                    f"{n} x 4 KiB put, {how} (veil API / Tahoe web API)",
                    median(lambda: veil_small(conc), opts.runs),  # noqa: B023
                    median(lambda: tahoe_small(http, conc), opts.runs),  # noqa: B023
                    median(lambda: tahoe_small(fool, conc), opts.runs),  # noqa: B023
                    "files/s",
                    True,
                )

            # -- directories and mutable files ----------------------------------
            if not opts.skip_dirs:
                from compare_dirs import directory_rows

                directory_rows(table, tmp, vclient, tahoe, http, opts)

            # -- memory and idle CPU -------------------------------------------
            if client_rss["veil"]:  # measured by the put/get rows only
                table.add(
                    "client peak RSS (CLI)",
                    client_rss["veil"] / 1024,
                    client_rss["tahoe"] / 1024,
                    None,
                    "MiB",
                    False,
                )
            table.add(
                "storage server peak RSS",
                peak_rss_kib(veil_pids) / 1024,
                peak_rss_kib([p.proc.pid for p in tnodes if p.proc]) / 1024,
                None,
                "MiB",
                False,
            )
            hz = os.sysconf("SC_CLK_TCK")
            a, b = cpu_ticks(veil_pids), cpu_ticks(tahoe_pids)
            time.sleep(20)
            veil_idle = (cpu_ticks(veil_pids) - a) / hz / 20 * 100
            tahoe_idle = (cpu_ticks(tahoe_pids) - b) / hz / 20 * 100
            print(
                f"idle grid CPU over 20 s: veil {veil_idle:.2f}% of a core, "
                f"Tahoe (10 servers + 2 clients) {tahoe_idle:.1f}%"
            )
        finally:
            for c in clients:
                c.stop()
            for t in tnodes:
                t.stop()
            subprocess.run([*VEIL, "grid", "stop", str(tmp / "veil")], stdout=subprocess.DEVNULL)
    table.print()


if __name__ == "__main__":
    main()
