"""Commands handed to the running node (``veil run`` on the client's node
directory, ``private/cli.sock``), on a real process grid.

Each test reads the node's log for the line the node writes when it runs a
command for a caller's pid, so a command that ran in its own process instead
is told apart from one the node ran. Backups and restores through the node
give the same snapshots and bytes, and so do ``put`` and ``get`` of regular
files (standard streams stay in the caller); relative paths mean the caller's working
directory; exit statuses and error lines come back; a caller that goes away
(SIGINT) cancels its command, and the rerun finishes; a node killed
mid-command is one clear line; different Tor/veil variables, a different
umask, ``VEIL_STANDALONE=1`` and a changed ``tahoe.cfg`` run in the caller.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_backup_inprocess import expected, make_tree, picture

pytestmark = pytest.mark.integration
MAIN = [sys.executable, "-m", "veil.frontends.cli.main"]
LAUNCHER = [sys.executable, "-m", "veil.frontends.cli.launcher"]
TIMEOUT = 120


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("served-grid") / "g"
    shares = ["--shares-needed", "2", "--shares-happy", "2", "--shares-total", "4"]
    subprocess.run(
        [*MAIN, "grid", "start", str(root), "--servers", "4", *shares],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    try:
        subprocess.run(
            [*MAIN, "-d", str(root / "client"), "create-alias", "tahoe"],
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
        )
        yield root
    finally:
        subprocess.run([*MAIN, "grid", "stop", str(root)], capture_output=True, timeout=TIMEOUT)


class Node:
    """``veil run`` on the client's directory, stopped by its PID."""

    def __init__(self, client: Path) -> None:
        self.client = client
        self.log = client / "logs" / "node.log"
        self.skip = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [*MAIN, "run", str(client)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + TIMEOUT
        while not self.listening():  # a socket a killed node left is not enough
            assert self.proc.poll() is None, "the node did not start"
            assert time.monotonic() < deadline, "the node did not serve commands"
            time.sleep(0.05)

    def listening(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(self.client / "private" / "cli.sock"))
            except OSError:
                return False
        return True

    def lines(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.skip)
            return f.read().decode("utf-8", "replace")

    def ran(self, command: str, pid: int) -> bool:
        return f"running {command} for pid {pid}" in self.lines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(TIMEOUT)


@pytest.fixture
def node(grid: Path) -> Iterator[Node]:
    served = Node(grid / "client")
    try:
        yield served
    finally:
        served.stop()


def run(
    grid: Path,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    code: int = 0,
) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [*LAUNCHER, "-d", str(grid / "client"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == code, err.decode()
    return proc.pid, out.decode(), err.decode()


def test_backup_and_restore_through_the_node(grid: Path, node: Node, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    (tmp_path / "excl").write_text("*.skipme\n")
    (src / "a.skipme").write_bytes(b"left out")
    pid, out, _ = run(
        grid,
        "backup",
        "--json",
        "--exclude-from-utf-8",
        "excl",
        "src",
        "tahoe:served",
        cwd=tmp_path,
        code=3,  # make_tree's FIFO and its name that is not UTF-8 are skipped
    )
    assert node.ran("backup", pid)
    summary = json.loads(out.splitlines()[-1])
    assert summary["message_type"] == "summary" and summary["files_new"] > 0
    pid, out, _ = run(grid, "snapshots", "--json", "tahoe:served")
    assert node.ran("snapshots", pid) and len(json.loads(out)) == 1
    pid, _, _ = run(grid, "restore", "tahoe:served", "back", cwd=tmp_path)
    assert node.ran("restore", pid)
    want = expected(src)
    want.pop("a.skipme")
    assert picture(tmp_path / "back") == want
    pid, out, _ = run(grid, "ls", "tahoe:served")
    assert node.ran("ls", pid) and out == "Archives/\nLatest/\n"
    # an unchanged rerun through the node uploads nothing
    again_args = ["backup", "--json", "--exclude-from-utf-8", "excl", "src", "tahoe:served"]
    pid, out, _ = run(grid, *again_args, cwd=tmp_path, code=3)
    again = json.loads(out.splitlines()[-1])
    assert node.ran("backup", pid) and again["files_new"] == 0 and again["dirs_new"] == 0


def test_put_and_get_of_files_through_the_node(grid: Path, node: Node, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "in.bin").write_bytes(data)
    pid, out, _ = run(grid, "put", "in.bin", cwd=tmp_path)  # the caller's relative path
    assert node.ran("put", pid)
    cap = out.strip()
    assert cap.startswith("URI:CHK:")
    pid, _, _ = run(grid, "get", cap, "out.bin", cwd=tmp_path)
    assert node.ran("get", pid) and (tmp_path / "out.bin").read_bytes() == data
    pid, _, _ = run(grid, "put", "in.bin", "tahoe:served.bin", cwd=tmp_path)
    assert node.ran("put", pid)
    pid, _, _ = run(grid, "get", "tahoe:served.bin", "again.bin", cwd=tmp_path)
    assert node.ran("get", pid) and (tmp_path / "again.bin").read_bytes() == data
    pid, out, _ = run(grid, "put", "--mutable", "in.bin", cwd=tmp_path)
    assert node.ran("put", pid) and out.startswith("URI:SSK:")
    pid, _, _ = run(grid, "get", out.strip(), "mutable.bin", cwd=tmp_path)
    assert node.ran("get", pid) and (tmp_path / "mutable.bin").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "again.bin",
        "in.bin",
        "mutable.bin",
        "out.bin",
    ]  # no partial file left beside them
    pid, out, err = run(grid, "get", "URI:CHK:nonsense", "bad.bin", cwd=tmp_path, code=1)
    assert node.ran("get", pid) and err.startswith("veil: error:") and err.count("\n") <= 2
    assert "Traceback" not in err and not (tmp_path / "bad.bin").exists()


def test_put_and_get_of_standard_streams_run_in_the_caller(grid: Path, node: Node) -> None:
    data = os.urandom(200_000)
    launcher = [*LAUNCHER, "-d", str(grid / "client")]
    put = subprocess.run([*launcher, "put", "-"], input=data, capture_output=True, timeout=TIMEOUT)
    assert put.returncode == 0, put.stderr
    cap = put.stdout.decode().strip()
    get = subprocess.run([*launcher, "get", cap], capture_output=True, timeout=TIMEOUT)
    assert get.returncode == 0 and get.stdout == data
    assert "running put" not in node.lines() and "running get" not in node.lines()
    gone = subprocess.run([*launcher, "put", "/nonexistent/x"], capture_output=True)
    assert gone.returncode == 1 and b"Traceback" not in gone.stderr
    assert "running put" not in node.lines()


def test_errors_come_back_as_one_line(grid: Path, node: Node) -> None:
    pid, out, err = run(grid, "ls", "nosuch:dir", code=1)
    assert node.ran("ls", pid)
    assert out == "" and err.startswith("veil: error: unknown alias 'nosuch'")
    assert "Traceback" not in err
    pid, _, err = run(grid, "ls", "--no-such-option", code=2)  # bad usage: the caller's own
    assert not node.ran("ls", pid) and "unrecognized arguments" in err


@pytest.mark.parametrize(
    "env",
    [{"VEIL_STANDALONE": "1"}, {"TOR_SOCKS_PORT": "9"}, {"VEIL_SOMETHING": "else"}],
    ids=["standalone", "tor-variable", "veil-variable"],
)
def test_another_environment_runs_in_the_caller(
    grid: Path, node: Node, env: dict[str, str]
) -> None:
    pid, out, _ = run(grid, "ls", "tahoe:", env=env)
    assert not node.ran("ls", pid)
    mine, theirs, _ = run(grid, "ls", "tahoe:")
    assert node.ran("ls", mine) and theirs == out


def test_another_umask_or_a_changed_config_runs_in_the_caller(grid: Path, node: Node) -> None:
    proc = subprocess.run(
        ["sh", "-c", 'umask 0000; exec "$@"', "sh", *LAUNCHER, "-d", str(grid / "client"), "ls"],
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "running ls" not in node.lines()
    cfg = grid / "client" / "tahoe.cfg"
    os.utime(cfg, ns=(time.time_ns(), time.time_ns() + 10**9))
    pid, _, _ = run(grid, "ls", "tahoe:")
    assert not node.ran("ls", pid)


def test_a_caller_that_goes_away_cancels_its_command(
    grid: Path, node: Node, tmp_path: Path
) -> None:
    src = tmp_path / "many"
    for i in range(400):
        (src / f"d{i % 8}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 8}" / f"f{i}").write_bytes(os.urandom(8000 + i))
    proc = subprocess.Popen(
        [*LAUNCHER, "-d", str(grid / "client"), "backup", "-j", "2", str(src), "tahoe:gone"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + TIMEOUT
    while not node.ran("backup", proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, "the node did not take it"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130 and b"interrupted" in err
    while "backup cancelled: its caller went away" not in node.lines():
        assert time.monotonic() < deadline, "the command was not cancelled"
        time.sleep(0.01)
    listing = subprocess.run(
        [*MAIN, "-d", str(grid / "client"), "snapshots", "tahoe:gone"], capture_output=True
    )
    assert listing.returncode == 1, "a cancelled backup linked a snapshot"
    pid, out, _ = run(grid, "backup", "--json", str(src), "tahoe:gone")
    assert node.ran("backup", pid) and json.loads(out.splitlines()[-1])["files"] == 400
    run(grid, "restore", "tahoe:gone", str(tmp_path / "back"))
    assert picture(tmp_path / "back") == picture(src)


def test_a_node_killed_mid_command_is_one_line(grid: Path, tmp_path: Path) -> None:
    served = Node(grid / "client")
    src = tmp_path / "many"
    for i in range(300):
        (src / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 4}" / f"f{i}").write_bytes(os.urandom(8000))
    try:
        proc = subprocess.Popen(
            [*LAUNCHER, "-d", str(grid / "client"), "backup", "-j", "1", str(src), "tahoe:k"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + TIMEOUT
        while not served.ran("backup", proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        served.proc.send_signal(signal.SIGKILL)
        served.proc.wait(TIMEOUT)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        served.stop()
    assert proc.returncode == 1
    assert err.decode() == "veil: error: the running node stopped before the command finished\n"
    # the socket the killed node left is not served: the next command runs here
    assert (grid / "client" / "private" / "cli.sock").exists()
    _, out, _ = run(grid, "backup", "--json", str(src), "tahoe:k")
    assert json.loads(out.splitlines()[-1])["files"] == 300


def test_the_socket_is_the_owners_only(grid: Path, node: Node) -> None:
    sock = grid / "client" / "private" / "cli.sock"
    assert sock.stat().st_mode & 0o777 == 0o600
    assert (grid / "client" / "private").stat().st_mode & 0o777 == 0o700
    node.stop()
    assert not sock.exists(), "a stopped node removes its socket"


def test_the_veil_executable_is_the_launcher() -> None:
    script = Path(sys.executable).parent / "veil"
    assert "veil.frontends.cli.launcher" in script.read_text()
