"""``veil grid stop`` signals only the node processes it started: a stale
``veil.pid`` whose PID now belongs to another program (here a ``sleep`` the
test starts) is removed with one warning, and that program lives on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]


def veil(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VEIL, *args], capture_output=True, text=True, timeout=timeout)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_stale_pid_of_another_process_is_not_signalled(tmp_path: Path) -> None:
    grid = tmp_path / "g"
    r = veil("grid", "start", str(grid), "--servers", "2", "--shares-happy", "2",
             "--shares-needed", "1", "--shares-total", "2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    nodes = sorted(grid.glob("storage-*"))
    real = [int((n / "veil.pid").read_text()) for n in nodes]
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        # storage-00's process dies without cleaning up; its PID file now names the sleeper
        os.kill(real[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while running(real[0]) and time.monotonic() < deadline:
            time.sleep(0.02)
        (nodes[0] / "veil.pid").write_text(f"{sleeper.pid}\n")

        status = veil("grid", "status", str(grid))
        assert "storage-00: stopped" in status.stdout and "storage-01: running" in status.stdout
        assert status.stderr.count("stale") == 1
        assert not (nodes[0] / "veil.pid").exists()  # status already removed the stale file

        (nodes[0] / "veil.pid").write_text(f"{sleeper.pid}\n")
        stop = veil("grid", "stop", str(grid))
        assert stop.returncode == 0, stop.stderr
        assert stop.stdout == "stopped 1 storage node(s)\n"  # the real one, storage-01
        warnings = stop.stderr.strip().splitlines()
        assert len(warnings) == 1 and "storage-00/veil.pid" in warnings[0], stop.stderr
        assert str(sleeper.pid) in warnings[0]
        assert sleeper.poll() is None and running(sleeper.pid)  # the sleeper survived
        assert not running(real[1])  # the real node was stopped
        assert not any((n / "veil.pid").exists() for n in nodes)
    finally:
        sleeper.kill()
        sleeper.wait(10)
        for pid in real:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_pid_of_a_veil_process_for_another_node_is_not_signalled(tmp_path: Path) -> None:
    """Even a veil process is spared when it is not this node's ``veil run``."""
    from veil.adapters.node.nodedir import NodeDirectory

    node = tmp_path / "g" / "storage-00"
    NodeDirectory.create(node, nickname="", storage=True)
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "veil", "run", str(tmp_path / "x")]
    )
    try:
        (node / "veil.pid").write_text(f"{other.pid}\n")
        stop = veil("grid", "stop", str(tmp_path / "g"))
        assert stop.returncode == 0 and stop.stdout == "stopped 0 storage node(s)\n"
        assert other.poll() is None and "stale" in stop.stderr
    finally:
        other.kill()
        other.wait(10)
