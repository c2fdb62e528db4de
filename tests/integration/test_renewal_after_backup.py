"""Each ``veil backup`` refreshes the node's renewal lists, so a friend's
``veil renew`` also keeps the snapshots made after ``veil renewal create``
alive (before, the friend renewed only what existed at creation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veil.frontends.cli.main import main

pytestmark = pytest.mark.integration
GRID = [sys.executable, "-m", "veil.frontends.cli.main", "grid"]
SHARES = ["--shares-needed", "2", "--shares-happy", "3", "--shares-total", "3"]


def _veil(capsys: pytest.CaptureFixture[str], node: Path, *args: str) -> str:
    got = main(["-d", str(node), *args])
    out, err = capsys.readouterr()
    assert got == 0, err
    return out


def test_a_backup_after_the_renewal_cap_is_renewed_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "g"
    subprocess.run(
        [*GRID, "start", str(grid), "--servers", "3", *SHARES], check=True, capture_output=True
    )
    try:
        owner = grid / "client"
        mine = tmp_path / "mine"
        mine.mkdir()
        (mine / "a.bin").write_bytes(os.urandom(5000))
        _veil(capsys, owner, "create-alias", "tahoe")
        _veil(capsys, owner, "backup", str(mine), "tahoe:backup")
        cap = _veil(capsys, owner, "renewal", "create", "tahoe:backup").strip()
        first = json.loads(_veil(capsys, owner, "renew", cap, "--json", "--no-repair"))
        (mine / "b.bin").write_bytes(os.urandom(6000))  # a new file, a new snapshot
        _veil(capsys, owner, "backup", str(mine), "tahoe:backup")
        second = json.loads(_veil(capsys, owner, "renew", cap, "--json", "--no-repair"))
        # the new snapshot directory, its new file and the new Latest link's target
        assert second["count-objects-checked"] > first["count-objects-checked"]
        text = _veil(capsys, owner, "renew", cap, "--no-repair")  # the text form of a check
        assert f"{second['count-objects-checked']} objects checked" in text
    finally:
        subprocess.run([*GRID, "stop", str(grid)], check=True, capture_output=True)
