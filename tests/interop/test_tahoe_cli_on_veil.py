"""The real ``tahoe`` 1.20 command line pointed at veil's gateway.

A node directory whose ``node.url`` names veil's gateway (veil writes it on
start) is all the Tahoe CLI needs: every command below runs against veil, the
bytes that come back are the bytes that went in, and the same command run
against Tahoe's own gateway (``--node-url``, same aliases, same grid) prints
the same thing wherever the output is deterministic.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .tahoe_harness import TahoeGrid, _subprocess_env
from .wapi_pair import veil_beside

TIMEOUT = 120


@dataclass
class CLI:
    tahoe: str
    node: Path  # veil's node directory: node.url names veil's gateway
    tahoe_url: str  # Tahoe's own gateway, for the same commands
    veil_url: str

    def run(self, *args: str, via_tahoe: bool = False, ok: bool = True) -> str:
        command, *rest = args
        url = ["--node-url", self.tahoe_url] if via_tahoe else []
        r = subprocess.run(
            [self.tahoe, "-d", str(self.node), command, *url, *rest],
            capture_output=True,
            timeout=TIMEOUT,
            env=_subprocess_env(),
        )
        if ok:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def cli(small_tahoe_grid: TahoeGrid, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CLI]:
    tahoe = small_tahoe_grid.clients[0]
    with veil_beside(tahoe, tmp_path_factory.mktemp("cli-on-veil")) as (url, node):
        yield CLI(tahoe.tahoe, node, tahoe.url, url)


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "dir"
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def alias(cli: CLI) -> str:
    assert "Alias 'cli' created" in cli.run("create-alias", "cli")
    return "cli"


def test_node_url_names_veil(cli: CLI) -> None:
    assert (cli.node / "node.url").read_text().strip().rstrip("/") == cli.veil_url


def test_put_get_ls_mkdir_mv_ln_unlink(cli: CLI, alias: str, tmp_path: Path) -> None:
    data = os.urandom(120_000)
    (tmp_path / "f.bin").write_bytes(data)
    cap = cli.run("put", str(tmp_path / "f.bin"), f"{alias}:f.bin").strip()
    assert cap.startswith("URI:CHK:")
    assert cap == cli.run("put", str(tmp_path / "f.bin"), via_tahoe=True).strip()  # convergent
    out = tmp_path / "out.bin"
    cli.run("get", f"{alias}:f.bin", str(out))
    assert out.read_bytes() == data
    cli.run("mkdir", f"{alias}:docs")
    cli.run("mv", f"{alias}:f.bin", f"{alias}:docs/moved.bin")
    cli.run("ln", f"{alias}:docs/moved.bin", f"{alias}:again.bin")
    cli.run("unlink", f"{alias}:again.bin")
    assert cli.run("ls", f"{alias}:docs") == "moved.bin\n"
    for args in (("ls", "-l", f"{alias}:"), ("ls", "--json", f"{alias}:docs")):
        assert cli.run(*args) == cli.run(*args, via_tahoe=True), args


def test_cp_recursive_both_ways(cli: CLI, alias: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "deep.bin").write_bytes(os.urandom(40_000))
    (src / "a" / "small.txt").write_bytes(b"small")
    (src / "top.txt").write_bytes(b"top")
    cli.run("cp", "-r", str(src), f"{alias}:")
    down = tmp_path / "down"
    cli.run("cp", "-r", f"{alias}:src", str(down))
    assert digest_tree(down / "src") == digest_tree(src)


def test_backup_twice_reuses(cli: CLI, alias: str, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "d").mkdir(parents=True)
    for i in range(5):
        (src / "d" / f"f{i}").write_bytes(os.urandom(2000 + i))
    first = cli.run("backup", "-v", str(src), f"{alias}:b")
    assert " 5 files uploaded (0 reused)" in first
    second = cli.run("backup", "-v", str(src), f"{alias}:b")
    assert " 0 files uploaded (5 reused)" in second
    down = tmp_path / "restored"
    cli.run("cp", "-r", f"{alias}:b/Latest", str(down))
    assert digest_tree(down / "Latest") == digest_tree(src)


def test_check_deep_check_and_manifest(cli: CLI, tmp_path: Path) -> None:
    cli.run("create-alias", "chk")
    (tmp_path / "big.bin").write_bytes(os.urandom(50_000))
    cli.run("put", str(tmp_path / "big.bin"), "chk:big.bin")
    cli.run("put", "--format=SDMF", str(tmp_path / "big.bin"), "chk:sub/mutable.bin")
    mine = cli.run("check", "--verify", "chk:big.bin")
    assert mine.startswith("Summary: Healthy")
    assert mine == cli.run("check", "--verify", "chk:big.bin", via_tahoe=True)
    deep = cli.run("deep-check", "--repair", "--add-lease", "chk:")
    assert deep == cli.run("deep-check", "--repair", "--add-lease", "chk:", via_tahoe=True)
    assert "done: 4 objects checked" in deep and "0 repairs attempted" in deep
    manifest = cli.run("manifest", "--raw", "chk:")
    assert manifest == cli.run("manifest", "--raw", "chk:", via_tahoe=True)
    assert len(manifest.splitlines()) == 5  # four nodes and the stats
