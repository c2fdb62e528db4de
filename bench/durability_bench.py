"""Deep check and deep renew of the "Backups" tree beside Tahoe's ``deep-check --add-lease``.

Starts a veil grid and a Tahoe grid of the same size (5 storage servers,
3-of-5, happy 4, on loopback), backs the workload of issue 12 up into each
(1000 files of 4 KiB in 50 directories plus ``--big`` 10 MiB files), then
times on the veil side ``veil deep-check``, ``veil deep-check --add-lease``,
``veil renewal create`` and ``veil renew RENEWAL-CAP`` (the friend's deep
renew: lease, check and repair from the verify-cap list), and on the Tahoe
side ``tahoe deep-check`` and ``tahoe deep-check --add-lease``. Prints a
Markdown table (seconds) and the machine's load average. Not a test; run
``.venv/bin/python bench/durability_bench.py`` (``--small 100 --big 0`` for a
quick look).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backup_bench import HAPPY, NEEDED, SERVERS, TOTAL, make_tree  # noqa: E402
from compare import compile_sources, timed  # noqa: E402
from tests.interop.tahoe_harness import (  # noqa: E402
    TahoeNode,
    storage_announcement,
    tahoe_executable,
)

VEIL = [str(ROOT / ".venv" / "bin" / "veil")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=1000, help="4 KiB files (in 50 directories)")
    ap.add_argument("--big", type=int, default=10, help="10 MiB files")
    ap.add_argument("--no-tahoe", action="store_true")
    opts = ap.parse_args()
    compile_sources()
    tahoe = tahoe_executable()
    v: dict[str, float] = {}
    t: dict[str, float] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="veil-durability-bench-") as tmpdir:
        tmp = Path(tmpdir)
        src = tmp / "src"
        make_tree(src, opts.small, opts.big)
        shares = ["--shares-needed", str(NEEDED), "--shares-happy", str(HAPPY)]
        grid = [*VEIL, "grid", "start", str(tmp / "veil"), "--servers", str(SERVERS), *shares]
        subprocess.run([*grid, "--shares-total", str(TOTAL)], check=True, stdout=subprocess.DEVNULL)
        vc = [*VEIL, "-d", str(tmp / "veil" / "client")]
        tnodes = [TahoeNode.create_storage(tahoe, tmp / f"ts{i}") for i in range(SERVERS)]
        client: TahoeNode | None = None
        try:
            subprocess.run([*vc, "create-alias", "tahoe"], check=True, capture_output=True)
            subprocess.run([*vc, "backup", str(src), "tahoe:b"], check=True, capture_output=True)
            v["deep-check"] = timed([*vc, "deep-check", "tahoe:b"])[0]
            v["deep-check --add-lease"] = timed([*vc, "deep-check", "--add-lease", "tahoe:b"])[0]
            r = subprocess.run(
                [*vc, "renewal", "create", "tahoe:b"], check=True, capture_output=True
            )
            cap = r.stdout.decode().strip()
            v["renewal create (walk, list, first renew)"] = timed(
                [*vc, "renewal", "create", "--name", "again", "tahoe:b"]
            )[0]
            v["renew RENEWAL-CAP (deep renew)"] = timed([*vc, "renew", cap])[0]
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
                subprocess.run(
                    [*tc, "backup", str(src), "tahoe:b"], check=True, capture_output=True
                )
                t["deep-check"] = timed([*tc, "deep-check", "tahoe:b"])[0]
                t["deep-check --add-lease"] = timed([*tc, "deep-check", "--add-lease", "tahoe:b"])[
                    0
                ]
        finally:
            if client is not None:
                client.stop()
            for n in tnodes:
                n.stop()
            subprocess.run([*VEIL, "grid", "stop", str(tmp / "veil")], capture_output=True)
    print(
        f"Workload: {opts.small} x 4 KiB in 50 dirs + {opts.big} x 10 MiB, backed up; "
        f"{SERVERS} servers, {NEEDED}-of-{TOTAL}, loopback.\n"
    )
    print("| operation | veil s | tahoe s |")
    print("|---|---|---|")
    for key, seconds in v.items():
        other = t.get(key)
        print(f"| {key} | {seconds:.2f} | {'-' if other is None else f'{other:.2f}'} |")
    load_after = os.getloadavg()
    print(
        f"\nload average (1/5/15 min) before: {load_before[0]:.1f}/{load_before[1]:.1f}/"
        f"{load_before[2]:.1f}, after: {load_after[0]:.1f}/{load_after[1]:.1f}/"
        f"{load_after[2]:.1f}; {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
