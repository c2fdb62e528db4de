"""The traveller, end to end through the command line on a local grid of real
processes: back up three directories, make a blob with ``--friends 2-of-3``,
wipe the node directory and the sources, restore in a new HOME from the blob
and two shares (bytes, modes, mtimes, symlinks as before), then back up again:
it works with a write-tier blob and refuses clearly with a read-only one.
Then every bad input of the issue: one clear line, non-zero exit, no file written.
The real Argon2id runs here (a few seconds a blob)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_backup_inprocess import expected, make_tree, picture
from veil.formats import recovery_blob, recovery_shares

pytestmark = pytest.mark.integration
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
TIMEOUT = 120
PASSPHRASE = "tundra clarinet oblong fever sediment wizard pocket"
TASKS = ("Documents", "Photos", "Mail")


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("recovery-grid") / "g"
    shares = ["--shares-needed", "2", "--shares-happy", "2", "--shares-total", "4"]
    subprocess.run(
        [*VEIL, "grid", "start", str(root), "--servers", "4", *shares],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    try:
        yield root
    finally:
        subprocess.run([*VEIL, "grid", "stop", str(root)], capture_output=True, timeout=TIMEOUT)


def run(
    home: Path, *args: str, stdin: str = "", code: int | None = 0
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    env.pop("VEIL_NODE_DIRECTORY", None)
    r = subprocess.run(
        [*VEIL, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT, env=env
    )
    if code is not None:
        assert r.returncode == code, r.stderr
    return r


def new_client(grid: Path, home: Path) -> None:
    """A client of the grid in ``home/.veil`` with one alias."""
    home.mkdir(parents=True)
    run(home, "create-client", "--shares-needed", "2", "--shares-happy", "2", "--shares-total", "4")
    shutil.copy(grid / "client" / "private" / "servers.yaml", home / ".veil/private/servers.yaml")
    run(home, "create-alias", "backups")


def small_tree(src: Path, name: str) -> None:
    (src / "sub").mkdir(parents=True)
    (src / "sub" / f"only in {name}").write_bytes(os.urandom(3000))
    os.chmod(src / "sub", 0o750)
    (src / "note").write_text(name)
    os.chmod(src / "note", 0o640)
    os.symlink("sub", src / "link")
    os.utime(src / "note", ns=(1_600_000_000_000_000_001,) * 2)


def back_up_three(home: Path) -> dict[str, dict[str, tuple[object, ...]]]:
    """Documents: every kind of entry (backup.md's tree; exit 3 for its FIFO and
    its name that is not UTF-8); Photos and Mail: a few files and a link."""
    pictures = {}
    for name in TASKS:
        src = home / name
        if name == "Documents":
            make_tree(src)
        else:
            small_tree(src, name)
        code = 3 if name == "Documents" else 0
        run(home, "backup", str(src), f"backups:{name.lower()}", code=code)
        pictures[name] = expected(src)
    return pictures


def make_blob(home: Path, out: Path, *extra: str) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    r = run(
        home,
        "recovery",
        "create",
        str(out),
        "--friends",
        "2-of-3",
        "--passphrase-fd",
        "0",
        *extra,
        stdin=PASSPHRASE + "\n",
    )
    assert PASSPHRASE not in r.stdout + r.stderr
    return r.stdout


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.mark.parametrize("tier", ["write", "read-only"])
def test_traveller(grid: Path, tmp_path: Path, tier: str) -> None:
    home1, home2, carry = tmp_path / "laptop", tmp_path / "tails", tmp_path / "friends"
    new_client(grid, home1)
    pictures = back_up_three(home1)
    blob = carry / "blob"
    made = make_blob(home1, blob, *(["--with-write-caps"] if tier == "write" else []))
    assert "3 backups" in made and "3 share files" in made
    assert len(blob.read_bytes()) == 4096
    shutil.rmtree(home1)  # the wipe: node directory and sources
    home2.mkdir()
    started = time.monotonic()
    r = run(
        home2,
        "recovery",
        "restore",
        str(blob),
        "--share",
        str(carry / "blob.share1"),
        "--share",
        str(carry / "blob.share3"),
        "--passphrase-fd",
        "0",
        stdin=PASSPHRASE,
    )
    took = time.monotonic() - started
    print(f"\nwhole restore ({tier} tier): {took:.1f}s; blob {len(blob.read_bytes())} bytes")
    assert PASSPHRASE not in r.stdout + r.stderr and "URI:" not in r.stdout + r.stderr
    for name in TASKS:
        assert f"restored backups:{name.lower()}" in r.stdout
        assert picture(home2 / name) == pictures[name], name
    assert (home2 / ".veil" / "tahoe.cfg").exists()
    (home2 / "Documents" / "new on tails").write_bytes(b"written on the new machine")
    again = run(home2, "backup", str(home2 / "Documents"), "backups:documents", code=None)
    if tier == "write":
        assert again.returncode == 0, again.stderr
        listed = run(home2, "snapshots", "backups:documents").stdout
        assert len(listed.splitlines()) == 2  # the old one and the new one, one history
        check = run(
            home2,
            "recovery",
            "check",
            str(blob),
            "--share",
            str(carry / "blob.share2"),
            "--share",
            str(carry / "blob.share1"),
            "--passphrase-fd",
            "0",
            stdin=PASSPHRASE,
        )
        assert "blob is older than the grid's latest record" in check.stdout
        assert "backups:documents" in check.stdout and "whole" in check.stdout
    else:
        assert again.returncode == 1
        lines = again.stderr.strip().splitlines()
        assert lines[0].startswith("veil: error: backups:documents was restored from a read-only")
        assert len(lines) == 2 and lines[1].startswith("hint:")
        # the new writable root holds the restored history; new places take backups
        assert len(run(home2, "snapshots", "backups:documents").stdout.splitlines()) == 1
        run(home2, "backup", str(home2 / "Documents"), "backups:documents-tails")


@pytest.fixture(scope="module")
def blobs(grid: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One node with one backup; ``blob`` (2-of-3) and ``other`` (another set)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    home = root / "home"
    new_client(grid, home)
    (home / "Notes").mkdir()
    (home / "Notes" / "n.txt").write_text("first")
    run(home, "backup", str(home / "Notes"), "backups:notes")
    make_blob(home, root / "carry" / "blob")
    _, other_set = recovery_shares.split(2, 3)  # a share of another blob's set
    (root / "other").mkdir()
    (root / "other" / "blob.share2").write_text(recovery_shares.share_file_text(other_set[1]))
    (home / "Notes" / "n.txt").write_text("second, newer")
    run(home, "backup", str(home / "Notes"), "backups:notes")  # the blob is now old
    return root


def bad_restore(tmp: Path, blob: Path, shares: list[Path], passphrase: str = PASSPHRASE) -> str:
    home = tmp / "fresh"
    home.mkdir()
    args = [a for s in shares for a in ("--share", str(s))]
    r = run(
        home,
        "recovery",
        "restore",
        str(blob),
        *args,
        "--passphrase-fd",
        "0",
        stdin=passphrase,
        code=1,
    )
    assert files_under(home) == [], "something was written"
    lines = r.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("veil: error: "), r.stderr
    assert "Traceback" not in r.stderr and passphrase not in r.stderr
    shutil.rmtree(home)
    return lines[0]


def test_bad_inputs_each_one_line_and_nothing_written(blobs: Path, tmp_path: Path) -> None:
    blob = blobs / "carry" / "blob"
    s1, s2 = blobs / "carry" / "blob.share1", blobs / "carry" / "blob.share2"
    foreign = blobs / "other" / "blob.share2"
    data = blob.read_bytes()
    truncated, flipped, noise = tmp_path / "t", tmp_path / "f", tmp_path / "r"
    truncated.write_bytes(data[:3000])
    flipped.write_bytes(data[:100] + bytes([data[100] ^ 4]) + data[101:])
    noise.write_bytes(os.urandom(4096))
    assert "do not open" in bad_restore(tmp_path, blob, [s1, s2], "wrong passphrase here")
    assert "2 shares are needed" in bad_restore(tmp_path, blob, [s1])
    assert "different sets" in bad_restore(tmp_path, blob, [s1, foreign])
    assert "not a whole recovery blob" in bad_restore(tmp_path, truncated, [s1, s2])
    assert "do not open" in bad_restore(tmp_path, flipped, [s1, s2])
    assert "do not open" in bad_restore(tmp_path, noise, [s1, s2])
    assert "cannot read the share" in bad_restore(tmp_path, blob, [s1, tmp_path / "nope"])


def test_old_blob_after_newer_backups(blobs: Path, tmp_path: Path) -> None:
    """The blob knows record #1; the grid's record says #2: check says so and
    writes nothing; restore says so and restores the newer snapshot. The blob
    is given in its text form, one share as a file and one typed (``-``)."""
    blob = blobs / "carry" / "blob"
    text = tmp_path / "blob.txt"
    text.write_text(recovery_blob.armour(blob.read_bytes()))
    typed = (blobs / "carry" / "blob.share3").read_text().strip()
    shares = ["--share", str(blob) + ".share1", "--share", "-"]
    home = tmp_path / "fresh"
    home.mkdir()
    stdin = f"{typed}\n{PASSPHRASE}\n"
    r = run(home, "recovery", "check", str(text), *shares, "--passphrase-fd", "0", stdin=stdin)
    assert "blob is older than the grid's latest record (blob: backup #1" in r.stdout
    assert files_under(home) == []
    r = run(home, "recovery", "restore", str(text), *shares, "--passphrase-fd", "0", stdin=stdin)
    assert "blob is older" in r.stderr
    assert (home / "Notes" / "n.txt").read_text() == "second, newer"
