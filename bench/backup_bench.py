"""``veil backup`` / ``restore`` beside ``tahoe backup`` / ``tahoe cp -r``, in one run.

Starts a Tahoe grid and a veil grid of the same size (5 storage servers,
3-of-5, happy 4, on loopback) and runs the workload of issue 12 through
each: 1000 files of 4 KiB in 50 directories plus ten 10 MiB files; first
backup, unchanged rerun, rerun after changing 10 files, full restore. Then
veil's client peak memory backing up a tree of ``--mem-files`` small files.
Prints a Markdown table (seconds; ratio = Tahoe / veil). Not a test; run
``.venv/bin/python bench/backup_bench.py`` (``--small 100 --big 1`` for a
quick look).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compare import compile_sources, timed  # noqa: E402
from tests.interop.tahoe_harness import (  # noqa: E402
    TahoeNode,
    storage_announcement,
    tahoe_executable,
)

VEIL = [str(ROOT / ".venv" / "bin" / "veil")]
MiB = 1024 * 1024
SERVERS, NEEDED, HAPPY, TOTAL = 5, 3, 4, 5


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


def rows(label: str, veil_s: float, tahoe_s: float | None) -> str:
    if tahoe_s is None:
        return f"| {label} | {veil_s:.2f} | - | - |"
    return f"| {label} | {veil_s:.2f} | {tahoe_s:.2f} | {tahoe_s / veil_s:.1f}x |"


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
    with tempfile.TemporaryDirectory(prefix="veil-backup-bench-") as tmpdir:
        tmp = Path(tmpdir)
        src = tmp / "src"
        make_tree(src, opts.small, opts.big)
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
        try:
            subprocess.run([*VEIL, *vc, "create-alias", "tahoe"], check=True, capture_output=True)
            v = {}
            v["first"], v_rss, _ = timed([*VEIL, *vc, "backup", str(src), "tahoe:b"])
            v["again"], _, _ = timed([*VEIL, *vc, "backup", str(src), "tahoe:b"])
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
                t["first"] = timed([*tc, "backup", str(src), "tahoe:b"])[0]
                t["again"] = timed([*tc, "backup", str(src), "tahoe:b"])[0]
            change(src)
            v["changed"], _, _ = timed([*VEIL, *vc, "backup", str(src), "tahoe:b"])
            v["restore"], _, _ = timed([*VEIL, *vc, "restore", "tahoe:b", str(tmp / "vr")])
            if client is not None:
                t["changed"] = timed([*tc, "backup", str(src), "tahoe:b"])[0]
                t["restore"] = timed([*tc, "cp", "-r", "tahoe:b/Latest", str(tmp / "tr")])[0]
            shutil.rmtree(tmp / "vr")
            mem = tmp / "mem"
            for i in range(opts.mem_files):
                d = mem / f"d{i % 200:03d}"
                d.mkdir(parents=True, exist_ok=True)
                (d / f"f{i}").write_bytes(b"%d" % i * 20)
            m_s, m_rss, _ = timed([*VEIL, *vc, "backup", str(mem), "tahoe:mem"])
        finally:
            if client is not None:
                client.stop()
            for n in tnodes:
                n.stop()
            subprocess.run([*VEIL, "grid", "stop", str(tmp / "veil")], capture_output=True)
    size = f"{opts.small} x 4 KiB in 50 dirs + {opts.big} x 10 MiB"
    out.append(f"Workload: {size}; {SERVERS} servers, {NEEDED}-of-{TOTAL}, loopback.\n")
    out.append("| row | veil s | tahoe s | tahoe/veil |")
    out.append("|---|---|---|---|")
    out.append(rows("first backup", v["first"], t["first"]))
    out.append(rows("unchanged rerun", v["again"], t["again"]))
    out.append(rows("rerun after changing 10 files", v["changed"], t["changed"]))
    out.append(rows("full restore (tahoe: cp -r Latest)", v["restore"], t["restore"]))
    out.append(
        f"\nveil client peak RSS: {v_rss / 1024:.0f} MiB (first backup above); "
        f"{m_rss / 1024:.0f} MiB backing up {opts.mem_files} files ({m_s:.1f} s)"
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
