"""The gateway's one client session hears of servers announced after it opened."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veil.adapters.web.wapi_session import GatewaySession

pytestmark = pytest.mark.integration
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]


def veil(*args: str) -> None:
    r = subprocess.run([*VEIL, *args], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


async def test_servers_announced_later_are_added(tmp_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []

    def start(node: Path) -> None:
        log = open(node.parent / f"{node.name}.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen([*VEIL, "run", str(node)], stdout=log, stderr=log))
        log.close()

    try:
        veil("create-introducer", str(tmp_path / "intro"))
        start(tmp_path / "intro")
        wait_for(tmp_path / "intro" / "private" / "introducer.furl")
        nurl = (tmp_path / "intro" / "private" / "introducer.furl").read_text().strip()
        for name in ("s0", "s1"):
            veil("create-node", str(tmp_path / name), "--introducer", nurl)
            start(tmp_path / name)
            wait_for(tmp_path / name / "private" / "announcement.yaml")
        veil("create-client", str(tmp_path / "c"), "--introducer", nurl)
        session = GatewaySession(tmp_path / "c", refresh=0.0)
        try:
            client = await session.client()
            assert len(client.broker.servers) == 2
            veil("create-node", str(tmp_path / "s2"), "--introducer", nurl)
            start(tmp_path / "s2")
            wait_for(tmp_path / "s2" / "private" / "announcement.yaml")
            deadline = time.monotonic() + 30
            while len(client.broker.servers) < 3 and time.monotonic() < deadline:
                await session.client()  # past ``refresh`` seconds: asks the introducer again
                await asyncio.sleep(0.2)
            assert len(client.broker.servers) == 3
            assert await session.client() is client  # still the one session
        finally:
            await session.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
