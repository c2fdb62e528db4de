"""The away test: the owner backs up, makes a renewal cap and its node is
deleted; servers expire leases after a short override duration; only a
friend's ``veil renew`` runs; two servers are lost (and repaired around) in
between. "Months" later (seconds here) ``veil recovery restore`` from the
owner's recovery blob, on a new machine (a new HOME), gets everything back. The control owner, who has no friend, loses
its data, so the expiry is real.

Real processes: seven ``veil run`` storage nodes with ``[storage]
expire.enabled = true`` and ``expire.override_lease_duration = 15 seconds``
(veil accepts seconds; Tahoe's units start at a day), so each server expires
leases every 3.75 s from the start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veil.adapters.node.nodedir import NodeDirectory
from veil.formats.params import EncodingParameters
from veil.frontends.cli.grid import is_node_process

pytestmark = pytest.mark.integration
OVERRIDE = 15.0
EXPIRE = (
    "[storage]\nexpire.enabled = true\nexpire.mode = age\n"
    f"expire.override_lease_duration = {OVERRIDE:.0f} seconds\n"
)
PARAMS = EncodingParameters(2, 3, 5)
GRID = [sys.executable, "-m", "veil.frontends.cli.main", "grid"]
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
PASSPHRASE = "lantern orbit velvet quarry thimble saffron gadget"


def _veil(capsys: pytest.CaptureFixture[str], node: Path, *args: str, code: int | None = 0) -> str:
    """Run a veil command in-process; ``code=None`` accepts any exit status."""
    from veil.frontends.cli.main import main

    got = main(["-d", str(node), *args])
    out, err = capsys.readouterr()
    assert code is None or got == code, err
    return out


def _client(path: Path, servers: dict[str, dict[str, object]]) -> Path:
    NodeDirectory.create(path, nickname="", storage=False, params=PARAMS)
    NodeDirectory(path).write_servers(servers)
    return path


def _lose(node: Path) -> None:
    """A storage server lost for good: its process stopped by PID, its disk gone."""
    pid = int((node / "veil.pid").read_text())
    assert is_node_process(pid, node)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists() and is_node_process(pid, node):
        os.kill(pid, signal.SIGKILL)
    (node / "veil.pid").unlink(missing_ok=True)
    shutil.rmtree(node / "storage")


def _share_files(root: Path) -> int:
    return sum(1 for p in root.glob("storage-*/storage/shares/??/*/*") if p.name.isdigit())


def _tree(root: Path, seed: int) -> None:
    root.mkdir()
    for i in range(12):
        (root / f"f{i}.bin").write_bytes(os.urandom(3000 + 1000 * i + seed))
    (root / "sub").mkdir()
    (root / "sub" / "note.txt").write_bytes(b"small note %d" % seed)


def test_a_friend_keeps_the_backup_alive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "g"
    for i in range(7):
        node = grid / f"storage-{i:02d}"
        NodeDirectory.create(node, nickname=f"storage-{i:02d}", storage=True)
        cfg = node / "tahoe.cfg"
        cfg.write_text(cfg.read_text().replace("[storage]\n", EXPIRE, 1))
    shares = ["--shares-needed", "2", "--shares-happy", "3", "--shares-total", "5"]
    start_grid = [*GRID, "start", str(grid), "--servers", "7", *shares]
    subprocess.run(start_grid, check=True, capture_output=True)
    try:
        owner = grid / "client"
        servers = NodeDirectory(owner).servers()
        control = _client(tmp_path / "control", servers)
        friend = _client(tmp_path / "friend", servers)
        mine, theirs = tmp_path / "mine", tmp_path / "theirs"
        _tree(mine, 0)
        _tree(theirs, 1)
        # the control owner backs up and goes away with no friend
        _veil(capsys, control, "create-alias", "tahoe")
        _veil(capsys, control, "backup", str(theirs), "tahoe:backup")
        lost_dir = json.loads(_veil(capsys, control, "ls", "--json", "tahoe:"))["backup"]["ro_uri"]
        # the owner backs up, renews once, makes the renewal cap and goes away
        t0 = time.monotonic()
        _veil(capsys, owner, "create-alias", "tahoe")
        _veil(capsys, owner, "backup", str(mine), "tahoe:backup")
        _veil(capsys, owner, "deep-check", "--add-lease", "tahoe:")
        setup = time.monotonic() - t0
        assert setup < OVERRIDE - 1, f"backing up took {setup:.1f} s: too slow for this timeline"
        saved = json.loads(_veil(capsys, owner, "ls", "--json", "tahoe:"))["backup"]["ro_uri"]
        renewal_cap = _veil(capsys, owner, "renewal", "create", "tahoe:backup").strip()
        assert renewal_cap.startswith("URI:VEIL-RENEWAL:")
        blob = tmp_path / "carried" / "blob"  # what the traveller leaves with friends
        blob.parent.mkdir()
        made = ["-d", str(owner), "recovery", "create", str(blob), "--passphrase-fd", "0"]
        subprocess.run([*VEIL, *made], input=PASSPHRASE + "\n", text=True, check=True)
        wanted = {p.relative_to(mine): p.read_bytes() for p in mine.rglob("*") if p.is_file()}
        shutil.rmtree(owner)  # the owner's node is gone: nothing of it renews
        shutil.rmtree(mine)  # and so is the laptop's copy
        cap_file = tmp_path / "renewal.cap"
        cap_file.write_text(renewal_cap)
        before = _share_files(grid)
        start = time.monotonic()
        lost = False
        runs = 0
        while time.monotonic() - start < 2.5 * OVERRIDE:  # lease lifetimes go by
            if not lost and time.monotonic() - start > OVERRIDE / 2:
                _lose(grid / "storage-00")
                _lose(grid / "storage-01")
                lost = True
            renew = ["renew", "--cap-file", str(cap_file), "--json"]
            out = json.loads(_veil(capsys, friend, *renew, code=None))
            runs += 1
            time.sleep(0.5)
        assert lost and runs >= 5
        # After the loss, immutable objects were rebuilt onto the other servers; the
        # mutable ones (the backup directories, the pointer) can only be renewed
        # without their write caps: still recoverable, short of shares.
        assert out["count-objects-checked"] == 18
        for path, r in out["list-unhealthy-files"]:
            assert r["summary"].startswith("Unhealthy: ") and "(enc 2-of-5)" in r["summary"], path
            assert r["results"]["recoverable"]
        assert out["count-objects-unhealthy-post-repair"] == len(out["list-unhealthy-files"]) <= 3
        assert _share_files(grid) < before  # the control's shares (and lost servers') went
        # "months" later, a new machine with nothing but the blob and the passphrase
        tails = tmp_path / "tails"
        tails.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "VEIL_NODE_DIRECTORY"}
        restore = [*VEIL, "recovery", "restore", str(blob), "--passphrase-fd", "0"]
        done = subprocess.run(
            restore,
            input=PASSPHRASE,
            text=True,
            capture_output=True,
            env={**env, "HOME": str(tails)},
        )
        assert done.returncode == 0, done.stderr
        assert {
            p.relative_to(mine): p.read_bytes() for p in mine.rglob("*") if p.is_file()
        } == wanted
        assert saved  # the read cap the owner could also have carried
        home = _client(tmp_path / "new-home", servers)
        # the control run: nobody renewed, so the servers deleted it
        gone = json.loads(_veil(capsys, home, "check", lost_dir, "--json"))
        assert gone["results"]["count-shares-good"] == 0 and not gone["results"]["recoverable"]
        _veil(capsys, home, "restore", lost_dir, str(tmp_path / "nothing"), code=1)
    finally:
        subprocess.run([*GRID, "stop", str(grid)], check=True, capture_output=True)
