"""The filesystem commands end to end on a real process grid: create-alias,
mkdir, cp -r both ways (modification times kept), ls, mv, ln, rm, get by path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_filesystem_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from veil.frontends.cli.main import main

    grid = tmp_path / "g"
    shares = ["--shares-needed", "2", "--shares-happy", "3", "--shares-total", "4"]
    start = [sys.executable, "-m", "veil.frontends.cli.main", "grid", "start", str(grid)]
    subprocess.run([*start, "--servers", "4", *shares], check=True, capture_output=True)
    node = str(grid / "client")

    def veil(*args: str) -> str:
        code = main(["-d", node, *args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    try:
        veil("create-alias", "tahoe")
        veil("mkdir", "tahoe:docs")
        src = tmp_path / "tree"
        (src / "a").mkdir(parents=True)
        (src / "a" / "x.txt").write_bytes(os.urandom(3000))
        (src / "top.txt").write_bytes(b"top")
        os.utime(src / "top.txt", (1_600_000_000, 1_600_000_000))
        veil("cp", "-r", str(src), "tahoe:docs")
        assert veil("ls", "tahoe:docs/tree") == "a/\ntop.txt\n"
        listing = json.loads(veil("ls", "--json", "tahoe:docs/tree"))
        assert listing["top.txt"]["metadata"]["mtime"] == 1_600_000_000
        veil("mv", "tahoe:docs/tree/top.txt", "tahoe:top.txt")
        veil("ln", "tahoe:top.txt", "tahoe:docs/again.txt")
        veil("rm", "tahoe:top.txt")
        assert "again.txt" in veil("ls", "tahoe:docs")
        down = tmp_path / "down"
        down.mkdir()
        veil("cp", "-r", "tahoe:docs/tree", str(down))
        assert (down / "tree" / "a" / "x.txt").read_bytes() == (src / "a" / "x.txt").read_bytes()
        assert veil("get", "tahoe:docs/again.txt") == "top"
        code = main(["-d", node, "rm", "tahoe:nothing"])
        assert code == 1 and "no such file" in capsys.readouterr().err
        code = main(["-d", node, "get", "tahoe:docs"])
        assert code == 1 and "is a directory" in capsys.readouterr().err
    finally:
        stop = [sys.executable, "-m", "veil.frontends.cli.main", "grid", "stop", str(grid)]
        subprocess.run(stop, check=True, capture_output=True)
