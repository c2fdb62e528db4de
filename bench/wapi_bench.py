"""Small ``tahoe put``/``get``/``ls`` through veil's web gateway and through Tahoe's.

One Tahoe 1.20 grid on loopback (three storage nodes, 2-of-3), its Tahoe client,
and veil's gateway on a copy of that client's node directory (same servers,
same convergence secret): the real ``tahoe`` CLI runs the same commands against
each gateway (``--node-url``), and plain HTTP does the same calls without the
CLI's start-up. Prints the median of ``--runs`` runs per operation and the
ratio Tahoe/veil (above 1: veil is faster). Not a test; run
``.venv/bin/python bench/wapi_bench.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.wapi_gateway import http  # noqa: E402
from tests.interop.tahoe_harness import TahoeGrid, _subprocess_env, tahoe_executable  # noqa: E402
from tests.interop.wapi_pair import veil_beside  # noqa: E402


def median_time(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    tahoe: str, node: Path, url: str, small: Path, data: bytes, runs: int
) -> dict[str, float]:
    """Median seconds of each operation through the gateway at ``url``."""

    def cli(*command: str) -> bytes:
        name, *rest = command
        r = subprocess.run(
            [tahoe, "-d", str(node), name, "--node-url", url, *rest],
            capture_output=True,
            check=True,
            timeout=120,
            env=_subprocess_env(),
        )
        return r.stdout

    dircap = http("POST", url + "/uri?t=mkdir", b"").text
    cap = http("PUT", f"{url}/uri/{dircap}/small.bin", data).text
    http("GET", url + "/?t=json")  # the first call opens veil's session
    rows = {
        "tahoe put": median_time(lambda: cli("put", str(small)), runs),
        "tahoe get": median_time(lambda: cli("get", cap), runs),
        "tahoe ls": median_time(lambda: cli("ls", dircap), runs),
        "HTTP PUT /uri": median_time(lambda: http("PUT", url + "/uri", data), runs),
        "HTTP GET /uri/CAP": median_time(lambda: http("GET", f"{url}/uri/{cap}"), runs),
        "HTTP GET DIR?t=json": median_time(lambda: http("GET", f"{url}/uri/{dircap}?t=json"), runs),
    }
    assert http("GET", f"{url}/uri/{cap}").body == data
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=10_000, help="bytes of the small file")
    args = parser.parse_args()
    tahoe = tahoe_executable()
    data = os.urandom(args.size)
    with tempfile.TemporaryDirectory(prefix="wapi-bench-") as tmp:
        root = Path(tmp)
        (root / "small.bin").write_bytes(data)
        with TahoeGrid(tahoe, root / "grid") as grid:
            grid.add_storage(3)
            client = grid.add_client("client", needed=2, happy=2, total=3)
            grid.start()
            with veil_beside(client, root) as (veil_url, veil_node):
                gateways = {"tahoe": client.url, "veil": veil_url}

                rows = {
                    who: measure(tahoe, veil_node, url, root / "small.bin", data, args.runs)
                    for who, url in gateways.items()
                }
    load = os.getloadavg()[0]
    print(f"small file {args.size} bytes, median of {args.runs} runs, load average {load:.1f}")
    print(f"{'operation':<22}{'Tahoe s':>10}{'veil s':>10}{'Tahoe/veil':>12}")
    for op in rows["tahoe"]:
        t, v = rows["tahoe"][op], rows["veil"][op]
        print(f"{op:<22}{t:>10.3f}{v:>10.3f}{t / v:>12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
