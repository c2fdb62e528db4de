"""``veil backup`` / ``restore`` / ``snapshots`` / ``forget`` on a real process
grid: the client killed (SIGKILL) mid-backup and mid-restore, and N-k servers
killed mid-backup; every rerun finishes with nothing lost, and no half-made
snapshot is ever linked under ``Archives/``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_backup_inprocess import expected, make_tree, picture

pytestmark = pytest.mark.integration
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
TIMEOUT = 120


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("backup-grid") / "g"
    shares = ["--shares-needed", "2", "--shares-happy", "2", "--shares-total", "4"]
    subprocess.run(
        [*VEIL, "grid", "start", str(root), "--servers", "4", *shares],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    try:
        subprocess.run(
            [*VEIL, "-d", str(root / "client"), "create-alias", "tahoe"],
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
        )
        yield root
    finally:
        subprocess.run([*VEIL, "grid", "stop", str(root)], capture_output=True, timeout=TIMEOUT)


def veil(grid: Path, *args: str, code: int = 0) -> str:
    r = subprocess.run(
        [*VEIL, "-d", str(grid / "client"), *args], capture_output=True, timeout=TIMEOUT
    )
    assert r.returncode == code, r.stderr.decode()
    return r.stdout.decode()


def summary(out: str) -> dict[str, Any]:
    lines = [json.loads(line) for line in out.splitlines()]
    assert all("message_type" in line for line in lines)
    (last,) = [line for line in lines if line["message_type"] == "summary"]
    return dict(last)


def start(grid: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*VEIL, "-d", str(grid / "client"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_until(check: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def uploaded_rows(grid: Path) -> int:
    db = grid / "client" / "private" / "backupdb.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as c:
            return int(c.execute("SELECT count(*) FROM local_files").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def many_files(root: Path, count: int) -> None:
    for i in range(count):
        d = root / f"dir{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.bin").write_bytes(os.urandom(2000 + i))


def test_backup_killed_then_rerun_then_restore_killed_then_rerun(
    grid: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    make_tree(src)
    many_files(src / "many", 300)
    proc = start(grid, "backup", "-j", "2", str(src), "tahoe:home")
    try:
        wait_until(lambda: uploaded_rows(grid) >= 40, "some files uploaded")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=TIMEOUT)
    done_before = uploaded_rows(grid)
    assert done_before < 311, "the backup finished before it could be killed"
    # nothing half-made is linked: no snapshot yet (Archives is made first, as Tahoe
    # does, while the files upload: the kill may come before or after it is made)
    listing = subprocess.run(
        [*VEIL, "-d", str(grid / "client"), "snapshots", "tahoe:home"], capture_output=True
    )
    assert listing.stdout == b"", listing.stdout
    assert (listing.returncode, listing.stderr) in (
        (0, b"no snapshots yet under tahoe:home\n"),
        (1, b"veil: error: no such file or directory: home\n"),
        (1, b"veil: error: there is no backup here (no Archives directory)\n"),
    ), listing
    first = summary(veil(grid, "backup", "--json", str(src), "tahoe:home", code=3))
    assert first["files_unchanged"] >= done_before - 2 and first["files"] == 311
    assert first["skipped"] == 2  # the FIFO and the name that is not UTF-8
    snaps = json.loads(veil(grid, "snapshots", "--json", "tahoe:home"))
    assert len(snaps) == 1 and snaps[0]["latest"] and snaps[0]["files"] == 311
    assert veil(grid, "ls", "tahoe:home") == "Archives/\nLatest/\n"

    out = tmp_path / "out"
    proc = start(grid, "restore", "-j", "2", "tahoe:home", str(out))
    try:
        wait_until(lambda: len(list((out / "many").rglob("*.bin"))) >= 40, "files restored")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=TIMEOUT)
    want = expected(src)
    got = picture(out)
    assert got and all(want[k][-1] == v[-1] for k, v in got.items() if v[0] == "file")
    again = summary(veil(grid, "restore", "--json", "tahoe:home", str(out)))
    assert again["files_unchanged"] >= 40
    assert picture(out) == want
    assert not (out / ".veil-restore").exists()
    err = subprocess.run(
        [*VEIL, "-d", str(grid / "client"), "restore", "tahoe:home", str(out)],
        capture_output=True,
    )
    assert err.returncode == 1 and b"is not empty" in err.stderr and b"Traceback" not in err.stderr


def test_servers_killed_mid_backup(grid: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    many_files(src, 200)
    veil(grid, "backup", str(src), "tahoe:two")
    for i in range(0, 200, 4):  # change 50 files
        (src / f"dir{i % 10}" / f"f{i}.bin").write_bytes(os.urandom(3000))
    rows = uploaded_rows(grid)
    proc = start(grid, "backup", "--json", "-j", "2", str(src), "tahoe:two")
    killed = []
    try:
        wait_until(lambda: proc.poll() is not None or uploaded_rows(grid) >= rows + 0, "start")
        time.sleep(0.3)
        for node in ("storage-02", "storage-03"):  # N - k = 2 of the 4 servers
            pid = int((grid / node / "veil.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(node)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, stderr.decode()
    assert summary(stdout.decode())["files"] == 200
    out = tmp_path / "out"
    veil(grid, "restore", "tahoe:two", str(out))
    assert picture(out) == picture(src)
    veil(grid, "forget", "--dry-run", "tahoe:two", "--keep-last", "1")
    gone = json.loads(veil(grid, "forget", "--json", "tahoe:two", "--keep-last", "1"))
    assert (
        len(gone["remove"]) == 1
        and len(json.loads(veil(grid, "snapshots", "--json", "tahoe:two"))) == 1
    )
    subprocess.run([*VEIL, "grid", "start", str(grid)], capture_output=True, timeout=TIMEOUT)
