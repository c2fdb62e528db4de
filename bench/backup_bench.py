"""``veil backup`` / ``restore`` beside ``tahoe backup`` / ``tahoe cp -r``, in one run.

Starts a Tahoe grid and a veil grid of the same size (5 storage servers,
3-of-5, happy 4, on loopback) and runs the workload of issue 12 through
each: 1000 files of 4 KiB in 50 directories plus ten 10 MiB files; first
backup, unchanged rerun (median of 3), rerun after changing 10 files (median
of 3 rounds, each changing the same 10 files again; each side's rounds in a
row), full restore, veil each
way: every command its own process, and through the client node running (as
Tahoe's CLI goes through its node). Then veil's client peak memory backing up
a tree of ``--mem-files`` small files.
Every timed row starts after an ``os.sync()``. Prints a Markdown table
(seconds; ratio = Tahoe / veil). Not a test; run
``.venv/bin/python bench/backup_bench.py`` (``--small 100 --big 1`` for a
quick look).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compare import compile_sources  # noqa: E402
from compare import timed as timed_as_is  # noqa: E402
from tests.interop.tahoe_harness import (  # noqa: E402
    TahoeNode,
    storage_announcement,
    tahoe_executable,
)

VEIL = [str(ROOT / ".venv" / "bin" / "veil")]
MiB = 1024 * 1024
SERVERS, NEEDED, HAPPY, TOTAL = 5, 3, 4, 5


def timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, int, bytes]:
    """``compare.timed``, starting with no dirty data left on disk by the row before
    (a restore leaves 100 MiB to write out, which a storage server's next fsyncs
    would otherwise wait for), for veil and Tahoe alike."""
    os.sync()
    return timed_as_is(args, env)


def make_tree(root: Path, small: int, big: int, dirs: int = 50) -> None:
    for i in range(small):
        d = root / f"dir{i % dirs:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:05d}").write_bytes(os.urandom(4096))
    for i in range(big):
        (root / f"big{i}").write_bytes(os.urandom(10 * MiB))


def change(root: Path, count: int = 10) -> None:
    files = sorted(p for p in root.rglob("file*"))[:count]
    for p in files:
        p.write_bytes(os.urandom(4096))


def rows(label: str, veil_s: float, served_s: float, tahoe_s: float | None) -> str:
    if tahoe_s is None:
        return f"| {label} | {veil_s:.2f} | {served_s:.2f} | - | - | - |"
    return (
        f"| {label} | {veil_s:.2f} | {served_s:.2f} | {tahoe_s:.2f} "
        f"| {tahoe_s / veil_s:.1f}x | {tahoe_s / served_s:.1f}x |"
    )


def node_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=1000, help="4 KiB files (in 50 directories)")
    ap.add_argument("--big", type=int, default=10, help="10 MiB files")
    ap.add_argument("--mem-files", type=int, default=20000, help="tree for the memory row")
    ap.add_argument("--no-tahoe", action="store_true")
    opts = ap.parse_args()
    compile_sources()
    tahoe = tahoe_executable()
    out: list[str] = []
    standalone = {**os.environ, "VEIL_STANDALONE": "1"}
    with tempfile.TemporaryDirectory(prefix="veil-backup-bench-") as tmpdir:
        tmp = Path(tmpdir)
        trees = {k: tmp / f"src-{k}" for k in ("veil", "served", "tahoe")}
        for tree in trees.values():  # each its own bytes: no upload finds another's shares
            make_tree(tree, opts.small, opts.big)
        subprocess.run(
            [
                *VEIL,
                "grid",
                "start",
                str(tmp / "veil"),
                "--servers",
                str(SERVERS),
                "--shares-needed",
                str(NEEDED),
                "--shares-happy",
                str(HAPPY),
                "--shares-total",
                str(TOTAL),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        vc = ["-d", str(tmp / "veil" / "client")]
        tnodes = [TahoeNode.create_storage(tahoe, tmp / f"ts{i}") for i in range(SERVERS)]
        client: TahoeNode | None = None
        node: subprocess.Popen[bytes] | None = None
        try:
            for alias in ("veil", "served"):
                subprocess.run([*VEIL, *vc, "create-alias", alias], check=True, capture_output=True)
            # the same client node, also running (as Tahoe's client node runs): the CLI
            # hands its commands to it; VEIL_STANDALONE=1 runs them in their own process
            node = subprocess.Popen(
                [*VEIL, "run", str(tmp / "veil" / "client")], stderr=subprocess.DEVNULL
            )
            sock = tmp / "veil" / "client" / "private" / "cli.sock"
            while not sock.exists():
                assert node.poll() is None, "the client node did not start"
                time.sleep(0.05)
            v: dict[str, float] = {}
            w: dict[str, float] = {}

            def veil(target: str, *args: str) -> tuple[float, int]:
                env = None if target == "served" else standalone
                t, rss, _ = timed([*VEIL, *vc, *args], env=env)
                return t, rss

            def backups(d: dict[str, float], which: str) -> int:
                d["first"], rss = veil(which, "backup", str(trees[which]), f"{which}:b")
                d["again"] = statistics.median(  # each rerun only adds a snapshot
                    veil(which, "backup", str(trees[which]), f"{which}:b")[0] for _ in range(3)
                )
                return rss

            v_rss = backups(v, "veil")
            backups(w, "served")
            t: dict[str, float | None] = dict.fromkeys(("first", "again", "changed", "restore"))
            if not opts.no_tahoe:
                for n in tnodes:
                    n.start()
                for n in tnodes:
                    n.wait_ready()
                servers = dict(storage_announcement(n) for n in tnodes)
                client = TahoeNode.create_client(
                    tahoe, tmp / "tc", needed=NEEDED, happy=HAPPY, total=TOTAL, servers=servers
                )
                client.start()
                client.wait_ready(connected_servers=SERVERS)
                tc = [tahoe, "-d", str(client.path)]
                subprocess.run([*tc, "create-alias", "tahoe"], check=True, capture_output=True)
                t["first"] = timed([*tc, "backup", str(trees["tahoe"]), "tahoe:b"])[0]
                t["again"] = statistics.median(
                    timed([*tc, "backup", str(trees["tahoe"]), "tahoe:b"])[0] for _ in range(3)
                )
            changed: dict[str, list[float]] = {"veil": [], "served": [], "tahoe": []}
            # Three rounds on each side in turn, each changing the same 10 files again.
            # Not interleaved: both veil sides update the node's one recovery record,
            # so a round of one would make the other's kept map of it stale each time.
            for which in ("veil", "served", "tahoe"):
                if which == "tahoe" and client is None:
                    continue
                for _ in range(3):
                    change(trees[which])
                    if which == "tahoe":
                        took = timed([*tc, "backup", str(trees["tahoe"]), "tahoe:b"])[0]
                    else:
                        took = veil(which, "backup", str(trees[which]), f"{which}:b")[0]
                    changed[which].append(took)
            v["changed"], w["changed"] = (statistics.median(changed[k]) for k in ("veil", "served"))
            if client is not None:
                t["changed"] = statistics.median(changed["tahoe"])
            for d, which in ((v, "veil"), (w, "served")):
                d["restore"], _ = veil(which, "restore", f"{which}:b", str(tmp / f"r-{which}"))
            if client is not None:
                t["restore"] = timed([*tc, "cp", "-r", "tahoe:b/Latest", str(tmp / "tr")])[0]
            served_rss = node_peak_kib(node.pid)
            for which in ("veil", "served"):
                shutil.rmtree(tmp / f"r-{which}")
            mem = tmp / "mem"
            for i in range(opts.mem_files):
                sub = mem / f"d{i % 200:03d}"
                sub.mkdir(parents=True, exist_ok=True)
                (sub / f"f{i}").write_bytes(b"%d" % i * 20)
            m_s, m_rss, _ = timed([*VEIL, *vc, "backup", str(mem), "veil:mem"], env=standalone)
        finally:
            if node is not None and node.poll() is None:
                node.send_signal(signal.SIGTERM)
                node.wait(60)
            if client is not None:
                client.stop()
            for n in tnodes:
                n.stop()
            subprocess.run([*VEIL, "grid", "stop", str(tmp / "veil")], capture_output=True)
    size = f"{opts.small} x 4 KiB in 50 dirs + {opts.big} x 10 MiB"
    out.append(f"Workload: {size}; {SERVERS} servers, {NEEDED}-of-{TOTAL}, loopback.\n")
    out.append(
        "| row | veil s (own process) | veil s (running node) | tahoe s (running node) "
        "| tahoe/veil | tahoe/veil (running node) |"
    )
    out.append("|---|---|---|---|---|---|")
    for key, label in (
        ("first", "first backup"),
        ("again", "unchanged rerun"),
        ("changed", "rerun after changing 10 files"),
        ("restore", "full restore (tahoe: cp -r Latest)"),
    ):
        out.append(rows(label, v[key], w[key], t[key]))
    out.append(
        f"\nveil client peak RSS: {v_rss / 1024:.0f} MiB (first backup, own process), "
        f"running node {served_rss / 1024:.0f} MiB (all its rows); "
        f"{m_rss / 1024:.0f} MiB backing up {opts.mem_files} files ({m_s:.1f} s, own process)"
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
