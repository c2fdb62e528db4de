"""Directory and mutable-file rows of ``bench/compare.py``: mkdir, ls of a large
directory, ``cp -r`` up and down of many small files, and an in-place MDMF
update of 4 KiB inside a large file, for veil and Tahoe (HTTP) side by side.

The CLI rows are measured twice for veil: each command in its own process,
and handed to the client node running (``veil run``), as Tahoe's CLI always
hands its commands to its running node."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from compare import VEIL, Table, timed  # type: ignore[attr-defined]
from tests.interop.tahoe_harness import TahoeNode, _http


def _median(f: Callable[[], float], runs: int) -> float:
    return statistics.median(f() for _ in range(runs))


def _cli(args: list[str]) -> tuple[float, bytes]:
    seconds, _, out = timed(args)
    return seconds, out


async def _veil_dir_with(vclient: Path, count: int) -> str:
    from veil.adapters.node.client_session import open_client
    from veil.services.directories import entry_for

    async with open_client(vclient) as c:
        children = {f"f{i:05d}": entry_for("URI:LIT:nbswy3dp") for i in range(count)}
        return (await c.directories().create(children)).to_string()


async def _veil_mdmf(vclient: Path, size: int) -> tuple[str, float]:
    from veil.adapters.node.client_session import open_client
    from veil.formats.mutable_caps import SSKWriteCap, parse_user_cap

    async with open_client(vclient) as c:
        files = c.mutable_files().mdmf()
        cap = await files.create(os.urandom(size))
    start = time.perf_counter()
    async with open_client(vclient) as c:
        parsed = parse_user_cap(cap.to_string())
        assert isinstance(parsed, SSKWriteCap)
        await c.mutable_files().mdmf().update(parsed, size // 2, os.urandom(4096))
    return cap.to_string(), time.perf_counter() - start


@contextmanager
def running_node(vclient: str) -> Iterator[None]:
    """``veil run`` on the client's node directory, stopped by its PID."""
    proc = subprocess.Popen([*VEIL, "run", vclient], stderr=subprocess.DEVNULL)
    sock = Path(vclient) / "private" / "cli.sock"
    try:
        while not sock.exists():
            if proc.poll() is not None:
                raise SystemExit("the veil client node did not start")
            time.sleep(0.05)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def _cli_rows(
    table: Table, tmp: Path, vclient: str, tahoe: str, http: TahoeNode, opts: Any, how: str
) -> None:
    """mkdir, ls and cp -r through the CLI; ``how`` names the veil side's way."""
    tdir = str(http.path)
    runs = opts.runs
    table.add(
        f"mkdir (CLI{how}, unlinked)",
        _median(lambda: _cli([*VEIL, "-d", vclient, "mkdir"])[0], runs),
        _median(lambda: _cli([tahoe, "-d", tdir, "mkdir"])[0], runs),
        None,
        "s",
        False,
    )
    n = opts.dir_files
    vcap = asyncio.run(_veil_dir_with(Path(vclient), n))
    children = {f"f{i:05d}": ["filenode", {"ro_uri": "URI:LIT:nbswy3dp"}] for i in range(n)}
    tcap = _http(
        "POST", f"{http.url}/uri?t=mkdir-with-children", json.dumps(children).encode()
    ).decode()
    table.add(
        f"ls of a {n}-entry directory (CLI{how})",
        _median(lambda: _cli([*VEIL, "-d", vclient, "ls", vcap])[0], runs),
        _median(lambda: _cli([tahoe, "-d", tdir, "ls", tcap])[0], runs),
        None,
        "s",
        False,
    )
    src = tmp / "many"
    src.mkdir()
    for i in range(n):
        (src / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
    alias = f"bench{len(table.rows)}"
    _cli([*VEIL, "-d", vclient, "create-alias", alias])
    _cli([tahoe, "-d", tdir, "create-alias", alias])
    up_v, _ = _cli([*VEIL, "-d", vclient, "cp", "-r", str(src), f"{alias}:"])
    up_t, _ = _cli([tahoe, "-d", tdir, "cp", "-r", str(src), f"{alias}:"])
    table.add(f"cp -r up, {n} x 4 KiB (CLI{how})", n / up_v, n / up_t, None, "files/s", True)
    down_v, down_t = tmp / "down-veil", tmp / "down-tahoe"
    down_v.mkdir()
    down_t.mkdir()
    dv, _ = _cli([*VEIL, "-d", vclient, "cp", "-r", f"{alias}:many", str(down_v)])
    dt, _ = _cli([tahoe, "-d", tdir, "cp", "-r", f"{alias}:many", str(down_t)])
    for d in (down_v / "many", down_t / "many"):
        if sorted(p.read_bytes() for p in d.iterdir()) != sorted(
            p.read_bytes() for p in src.iterdir()
        ):
            raise SystemExit(f"cp -r down into {d} gave different files")
    table.add(f"cp -r down, {n} x 4 KiB (CLI{how})", n / dv, n / dt, None, "files/s", True)
    for d in (src, down_v, down_t):
        shutil.rmtree(d)


def directory_rows(
    table: Table, tmp: Path, vclient: str, tahoe: str, http: TahoeNode, opts: Any
) -> None:
    _cli_rows(table, tmp, vclient, tahoe, http, opts, "")
    with running_node(vclient):
        _cli_rows(table, tmp, vclient, tahoe, http, opts, ", veil via its running node")
    size = opts.mdmf_mib * 2**20
    _, veil_update = asyncio.run(_veil_mdmf(Path(vclient), size))
    tcap_m = _http("PUT", f"{http.url}/uri?format=MDMF", os.urandom(size)).decode().strip()
    start = time.perf_counter()
    _http("PUT", f"{http.url}/uri/{tcap_m}?offset={size // 2}", os.urandom(4096))
    tahoe_update = time.perf_counter() - start
    table.add(
        f"MDMF in-place 4 KiB update in {opts.mdmf_mib} MiB (veil API / Tahoe web API)",
        veil_update,
        tahoe_update,
        None,
        "s",
        False,
    )
