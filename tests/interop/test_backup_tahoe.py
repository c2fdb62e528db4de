"""Backups between veil and the real Tahoe-LAFS 1.20 on one node directory:
``tahoe backup`` then ``veil backup`` onto the same alias (veil uploads
nothing Tahoe's backup database already knows) and the reverse, ``tahoe cp
-r`` of a veil snapshot, and ``veil restore`` of a Tahoe one."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .tahoe_harness import TahoeGrid, TahoeNode, _subprocess_env

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
TIMEOUT = 180


def tahoe(node: TahoeNode, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [node.tahoe, "-d", str(node.path), *args],
        capture_output=True,
        timeout=TIMEOUT,
        env=_subprocess_env(),
    )


def veil(node: TahoeNode, *args: str, code: int = 0) -> str:
    r = subprocess.run([*VEIL, "-d", str(node.path), *args], capture_output=True, timeout=TIMEOUT)
    assert r.returncode == code, r.stderr.decode()
    return r.stdout.decode()


def summary(out: str) -> dict[str, Any]:
    for line in out.splitlines():
        doc = json.loads(line)
        if doc["message_type"] == "summary":
            return dict(doc)
    raise AssertionError("no summary line")


def tree(root: Path) -> None:
    for i in range(30):
        d = root / f"d{i % 3}" / "sub"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_bytes(os.urandom(100 + 997 * i))
    (root / "top.txt").write_bytes(b"top")
    (root / "script").write_bytes(b"#!/bin/sh\n" * 20)
    os.chmod(root / "script", 0o750)
    (root / "empty dir").mkdir()


def contents(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".veil"):
            continue
        rel = str(path.relative_to(root))
        if path.is_dir():
            out[rel] = (0, "dir")
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[rel] = (stat.S_IMODE(path.stat().st_mode), digest)
    return out


@pytest.fixture(scope="module")
def client(small_tahoe_grid: TahoeGrid) -> TahoeNode:
    node = small_tahoe_grid.clients[0]
    r = tahoe(node, "create-alias", "backups")
    assert r.returncode == 0, r.stderr
    return node


def test_tahoe_backup_then_veil_backup(client: TahoeNode, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src)
    r = tahoe(client, "backup", str(src), "backups:one")
    assert r.returncode == 0, r.stderr
    done = summary(veil(client, "backup", "--json", str(src), "backups:one"))
    assert done["files_new"] == 0 and done["files_unchanged"] == 32  # Tahoe's database
    snaps = json.loads(veil(client, "snapshots", "--json", "backups:one"))
    assert len(snaps) == 2 and snaps[1]["latest"]
    assert snaps[0]["files"] == 32  # counted by walking the snapshot Tahoe made
    listing = tahoe(client, "ls", "backups:one/Archives")
    assert listing.returncode == 0 and len(listing.stdout.split()) == 2
    # Tahoe reads veil's snapshot
    down = tmp_path / "tahoe-cp"
    r = tahoe(client, "cp", "-r", "backups:one/Latest", str(down))
    assert r.returncode == 0, r.stderr
    want = {k: v[1] for k, v in contents(src).items()}
    assert {k: v[1] for k, v in contents(down / "Latest").items()} == want
    # veil restores Tahoe's snapshot, with modes (Tahoe's st_mode)
    out = tmp_path / "veil-restore"
    veil(client, "restore", f"backups:one/Archives/{snaps[0]['name']}", str(out))
    assert contents(out) == contents(src)
    assert os.stat(out / "top.txt").st_mtime == pytest.approx(os.stat(src / "top.txt").st_mtime)


def test_veil_backup_then_tahoe_backup(client: TahoeNode, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src)
    first = summary(veil(client, "backup", "--json", str(src), "backups:two"))
    assert first["files_new"] == 32
    # Tahoe names a snapshot by the second and replaces one of the same name (veil
    # takes the next free second): start Tahoe's in a later second than veil's
    time.sleep(1.05 - time.time() % 1)
    r = tahoe(client, "backup", "-v", str(src), "backups:two")
    assert r.returncode == 0, r.stderr
    assert b" 0 files uploaded (32 reused)" in r.stdout, r.stdout  # veil's database rows
    snaps = json.loads(veil(client, "snapshots", "--json", "backups:two"))
    assert len(snaps) == 2 and snaps[1]["latest"]
    out = tmp_path / "out"
    veil(client, "restore", "backups:two", str(out))  # Latest: the one Tahoe made
    assert contents(out) == contents(src)
