"""The command line against a real local grid of `veil run` processes on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]


def veil(
    *args: str, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*VEIL, *args], input=input, capture_output=True, timeout=timeout)


def pids(grid: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(grid.glob("storage-*/veil.pid"))]


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("grid") / "g"
    r = veil(
        "grid",
        "start",
        str(root),
        "--servers",
        "6",
        "--shares-needed",
        "3",
        "--shares-happy",
        "4",
        "--shares-total",
        "6",
    )
    assert r.returncode == 0, r.stderr.decode()
    yield root
    veil("grid", "stop", str(root))
    assert all(not Path(f"/proc/{p}").exists() for p in pids(root))


def client(grid: Path) -> list[str]:
    return ["-d", str(grid / "client")]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.02)


def restart_all(grid: Path) -> None:
    assert veil("grid", "start", str(grid), "--servers", "6").returncode == 0


def test_put_get_round_trip_and_json(grid: Path, tmp_path: Path) -> None:
    data = os.urandom(2_500_000)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    r = veil(*client(grid), "put", str(src))
    assert r.returncode == 0, r.stderr
    cap = r.stdout.decode().strip()
    assert cap.startswith("URI:CHK:") and cap.endswith(":3:6:2500000")
    out = tmp_path / "out.bin"
    assert veil(*client(grid), "get", cap, str(out)).returncode == 0
    assert out.read_bytes() == data
    assert (
        veil(*client(grid), "get", cap, "--offset", "1000000", "--length", "10").stdout
        == data[1000000:1000010]
    )
    r = veil(*client(grid), "put", "--json", str(src))
    assert b'"happiness": 6' in r.stdout and cap.encode() in r.stdout
    small = veil(*client(grid), "put", "-", input=b"hello")
    assert small.stdout.strip() == b"URI:LIT:nbswy3dp"
    piped = veil(*client(grid), "put", "-", input=data[:100_000]).stdout.decode().strip()
    assert veil(*client(grid), "get", piped).stdout == data[:100_000]


@pytest.mark.parametrize(
    "args,message",
    [
        (["get", "URI:CHK:nonsense"], b"malformed capability"),
        (["get", "hello"], b"not a capability"),
        (["put", "/nonexistent/file"], b"No such file"),
        (["put", "/"], b"Is a directory"),
        (["get", "URI:LIT:nbuqu", "/nonexistent-dir/x"], b"does not exist"),
        (
            [
                "get",
                "URI:CHK:3ider2oyrjylu3zxnxcaf3ufny:cz26at4njp7fajpj72krpfml4hewlqyeucaxp32t4c4eyjdfbp3q:3:10:56",
            ],
            b"shares",
        ),
    ],
)
def test_user_mistakes_are_one_clear_line(grid: Path, args: list[str], message: bytes) -> None:
    r = veil(*client(grid), *args)
    assert r.returncode == 1
    assert message in r.stderr
    assert b"Traceback" not in r.stderr
    assert r.stderr.startswith(b"veil: error:")


def test_missing_node_directory(tmp_path: Path) -> None:
    r = veil("-d", str(tmp_path / "none"), "put", "-", input=b"x" * 100)
    assert r.returncode == 1 and b"not a veil node directory" in r.stderr
    assert b"Traceback" not in r.stderr


def test_download_survives_dead_and_corrupt_servers(grid: Path, tmp_path: Path) -> None:
    data = os.urandom(3_000_000)
    cap = veil(*client(grid), "put", "-", input=data).stdout.decode().strip()
    procs = pids(grid)
    try:
        for pid in procs[:3]:  # N - k servers die
            kill(pid)
        r = veil(*client(grid), "get", cap)
        assert r.returncode == 0 and r.stdout == data
        # corrupt one byte of every share on the survivors' disks
        shares = [
            p for p in grid.glob("storage-0[3-5]/storage/shares/*/*/*") if "incoming" not in str(p)
        ]
        for share in shares:
            raw = bytearray(share.read_bytes())
            raw[5000] ^= 0x40
            share.write_bytes(raw)
        r = veil(*client(grid), "get", cap)
        assert (r.returncode == 1 and r.stdout != data[: len(r.stdout)]) or r.stdout == b""
        assert b"Traceback" not in r.stderr and b"corrupt" in r.stderr
        assert any(grid.glob("storage-0[3-5]/storage/corruption-advisories/*"))
    finally:
        restart_all(grid)
    # restarted servers keep identity and shares: the (still intact) shares of 0-2 suffice
    r = veil(*client(grid), "get", cap)
    assert r.returncode == 0 and r.stdout == data


def test_upload_survives_servers_killed_mid_upload(grid: Path, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(40_000_000)
    src.write_bytes(data)
    proc = subprocess.Popen(
        [*VEIL, *client(grid), "put", str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        time.sleep(0.6)
        victims = pids(grid)[:2]
        for pid in victims:
            kill(pid)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode == 0:  # 4 servers remain: happiness 4 is still reachable
        cap = out.decode().strip()
        r = veil(*client(grid), "get", cap)
        assert r.returncode == 0 and r.stdout == data
    else:  # the upload finished before the kill could matter, or failed clearly
        assert err.startswith(b"veil: error:") and b"Traceback" not in err
    restart_all(grid)


def test_stopped_server_does_not_block_get(grid: Path) -> None:
    data = os.urandom(500_000)
    cap = veil(*client(grid), "put", "-", input=data).stdout.decode().strip()
    pid = pids(grid)[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        r = veil(*client(grid), "get", cap, timeout=30)
        assert r.returncode == 0 and r.stdout == data
        assert time.monotonic() - start < 10
    finally:
        os.kill(pid, signal.SIGCONT)


def test_status_reports_each_server(grid: Path) -> None:
    r = veil(*client(grid), "status")
    assert r.returncode == 0 and b"connected to 6 of 6 storage servers" in r.stdout
    pid = pids(grid)[5]
    kill(pid)
    try:
        r = veil(*client(grid), "status", "--json")
        import json

        rows = json.loads(r.stdout)["servers"]
        down = [row for row in rows if not row["connected"]]
        assert len(down) == 1 and down[0]["nickname"] == "storage-05"
        assert down[0]["last_seen"] is not None  # seen by the first status call
    finally:
        restart_all(grid)


def test_create_client_makes_a_client_only_node(tmp_path: Path) -> None:
    r = veil("create-client", str(tmp_path / "c"))
    assert r.returncode == 0
    assert "enabled = false" in (tmp_path / "c" / "tahoe.cfg").read_text()
    # running, a client-only node serves the CLI's commands (private/cli.sock)
    proc = subprocess.Popen([*VEIL, "run", str(tmp_path / "c")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "c" / "private" / "cli.sock").exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not (tmp_path / "c" / "private" / "cli.sock").exists()
