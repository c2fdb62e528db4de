"""Twenty ``veil`` processes writing at once, against a local grid of real
storage server processes: every ``put - d:NAME`` that exits 0 is linked, and
every ``create-alias``/``add-alias`` that exits 0 is in ``private/aliases``
(each once lost some: a directory change replaced a version it had not read,
and every alias writer shared one ``aliases.tmp``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
WRITERS = 20
TIMEOUT = 280  # seconds for all writers together (retries give up after 120 s)


def veil(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VEIL, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("grid") / "g"
    r = veil("grid", "start", str(root), "--servers", "5", "--shares-needed", "3",
             "--shares-happy", "4", "--shares-total", "5")  # fmt: skip
    assert r.returncode == 0, r.stderr
    pids = [int(p.read_text()) for p in root.glob("storage-*/veil.pid")]
    yield root
    veil("grid", "stop", str(root))
    for pid in pids:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


def run_all(commands: list[tuple[list[str], str | None]]) -> list[tuple[int, str]]:
    """Start every command at once; (exit code, stderr) of each, in order."""
    procs = [
        subprocess.Popen(
            [*VEIL, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, _ in commands
    ]
    try:
        for p, (_, data) in zip(procs, commands, strict=True):
            assert p.stdin is not None
            p.stdin.write(data or "")
            p.stdin.close()
        return [(p.wait(TIMEOUT), p.stderr.read() if p.stderr else "") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            if p.stderr is not None:
                p.stderr.close()


def one_clear_line(stderr: str) -> bool:
    return stderr.startswith("veil: error:") and "Traceback" not in stderr


def test_twenty_concurrent_puts_into_one_directory(grid: Path) -> None:
    node = ["-d", str(grid / "client")]
    assert veil(*node, "create-alias", "shared").returncode == 0
    results = run_all(
        [([*node, "put", "-", f"shared:f{i}"], f"file {i}\n") for i in range(WRITERS)]
    )
    ls = veil(*node, "ls", "shared:")
    assert ls.returncode == 0, ls.stderr
    listed = set(ls.stdout.split())
    done = {f"f{i}" for i, (rc, _) in enumerate(results) if rc == 0}
    assert done <= listed, f"lost: {sorted(done - listed)}"
    assert all(rc == 0 or one_clear_line(err) for rc, err in results), results
    assert done == {f"f{i}" for i in range(WRITERS)}, results  # and nobody had to give up
    got = veil(*node, "get", "shared:f7")
    assert got.returncode == 0 and got.stdout == "file 7\n"


def test_twenty_concurrent_alias_writers(grid: Path) -> None:
    node = ["-d", str(grid / "client")]
    made = veil(*node, "mkdir")
    assert made.returncode == 0, made.stderr
    cap = made.stdout.strip()
    half = WRITERS // 2
    commands: list[tuple[list[str], str | None]] = []
    for i in range(half):
        commands.append(([*node, "create-alias", f"made{i}"], None))
        commands.append(([*node, "add-alias", f"added{i}", cap], None))
    results = run_all(commands)
    assert all(rc == 0 for rc, _ in results), results
    aliases = grid / "client" / "private" / "aliases"
    names = {line.split(":", 1)[0] for line in aliases.read_text().splitlines()}
    wanted = {f"made{i}" for i in range(half)} | {f"added{i}" for i in range(half)}
    assert wanted <= names
    assert aliases.stat().st_mode & 0o777 == 0o600
    assert not list(aliases.parent.glob("aliases*.tmp"))
    assert not (aliases.parent / "aliases.unsaved").exists()
    for i in (0, half - 1):  # each created alias names a working directory of its own
        ls = veil(*node, "ls", f"made{i}:")
        assert ls.returncode == 0 and ls.stdout == "", ls.stderr
