"""`veil run` on node directories: a real Tahoe 1.20 one served as it is, and
a veil one that keeps its NURL across restarts.

The Tahoe node is made by ``tahoe create-node`` and run once by Tahoe beside
a Tahoe introducer: the node hears its own announcement back, so the NURL
Tahoe really announced is read from its ``private/introducer_default_cache.yaml``.
Then Tahoe is stopped and ``veil run`` serves the same directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.interop.tahoe_harness import free_port, tahoe_executable
from veil.adapters.http.storage_client import HttpStorageClient
from veil.formats.nurl import parse_nurl

pytestmark = pytest.mark.integration
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
TIMEOUT = 60.0


class Procs:
    """Processes started by a test, each stopped by its PID (process group)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: list[str], log: Path, umask: int | None = None
    ) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                umask=-1 if umask is None else umask,
            )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.stop_all()


def wait_until(
    check: Callable[[], object], what: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if proc.poll() is not None:
            raise AssertionError(f"{what}: process exited\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in {TIMEOUT}s\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def tahoe(*args: str) -> None:
    subprocess.run([tahoe_executable(), *args], check=True, capture_output=True, timeout=120)


def listen_args(port: int) -> list[str]:
    return [f"--port=tcp:{port}:interface=127.0.0.1", f"--location=tcp:127.0.0.1:{port}"]


def own_announcement(node: Path) -> dict[str, Any] | None:
    cache = node / "private" / "introducer_default_cache.yaml"
    if not cache.exists() or not (node / "node.pubkey").exists():
        return None
    key = "v0-" + (node / "node.pubkey").read_text().strip().removeprefix("pub-v0-")
    for entry in yaml.safe_load(cache.read_text()) or []:
        if entry.get("key_s") == key and entry["ann"].get("anonymous-storage-NURLs"):
            return dict(entry["ann"])
    return None


def identity_files(node: Path) -> dict[str, str]:
    names = ["node.pubkey", "my_nodeid", "permutation-seed", "tahoe.cfg"]
    names += [f"private/{p.name}" for p in (node / "private").iterdir() if p.is_file()]
    return {n: hashlib.sha256((node / n).read_bytes()).hexdigest() for n in sorted(names)}


def test_veil_serves_a_tahoe_node_directory_as_it_is(tmp_path: Path, procs: Procs) -> None:
    tahoe_bin = tahoe_executable()
    intro, node = tmp_path / "introducer", tmp_path / "storage"
    tahoe("create-introducer", *listen_args(free_port()), str(intro))
    p_intro = procs.start([tahoe_bin, "run", "--allow-stdin-close", str(intro)], tmp_path / "i.log")
    furl_file = intro / "private" / "introducer.furl"
    wait_until(furl_file.exists, "tahoe introducer", p_intro, tmp_path / "i.log")
    storage_port = free_port()
    introducer = f"--introducer={furl_file.read_text().strip()}"
    tahoe("create-node", *listen_args(storage_port), "--webport=none", introducer, str(node))
    p_node = procs.start([tahoe_bin, "run", "--allow-stdin-close", str(node)], tmp_path / "s.log")
    wait_until(lambda: own_announcement(node), "tahoe's announcement", p_node, tmp_path / "s.log")
    tahoe_ann = own_announcement(node)
    assert tahoe_ann is not None
    procs.stop(p_node)
    procs.stop(p_intro)
    before = identity_files(node)
    assert "private/node.pem" in before and "private/storage.furl" in before

    log = tmp_path / "veil.log"
    p_veil = procs.start([*VEIL, "run", str(node)], log)
    ann_file = node / "private" / "announcement.yaml"
    wait_until(ann_file.exists, "veil run on the Tahoe node", p_veil, log)
    veil_ann = yaml.safe_load(ann_file.read_text())["ann"]
    assert sorted(veil_ann["anonymous-storage-NURLs"]) == sorted(
        tahoe_ann["anonymous-storage-NURLs"]
    )
    for key in ("anonymous-storage-FURL", "permutation-seed-base32", "nickname"):
        assert veil_ann[key] == tahoe_ann[key], key

    nurl = parse_nurl(veil_ann["anonymous-storage-NURLs"][0])
    assert nurl.port == storage_port

    async def version() -> object:
        client = HttpStorageClient(
            nurl, server_id="v0-x", lease_seed=b"\0" * 20, permutation_seed=b"\0" * 32
        )
        try:
            return await client.get_version()
        finally:
            await client.close()

    assert asyncio.run(asyncio.wait_for(version(), 30))  # TLS pin and swissnum both match
    procs.stop(p_veil)
    assert p_veil.returncode == 0, log.read_text()[-2000:]
    after = identity_files(node)
    assert {k: v for k, v in after.items() if k in before} == before  # byte-identical
    for name in ("tls.key", "tls.crt", "storage.swissnum"):
        assert not (node / "private" / name).exists(), name  # no second identity
    assert "Traceback" not in log.read_text()


def test_a_restarted_veil_node_keeps_its_nurl(tmp_path: Path, procs: Procs) -> None:
    node = tmp_path / "n"
    subprocess.run([*VEIL, "create-node", str(node)], check=True, timeout=60, umask=0)
    nurls = []
    for _ in range(2):
        log = tmp_path / "veil.log"
        proc = procs.start([*VEIL, "run", str(node)], log, umask=0)
        ann_file = node / "private" / "announcement.yaml"
        wait_until(ann_file.exists, "veil run", proc, log)
        nurls.append(yaml.safe_load(ann_file.read_text())["ann"]["anonymous-storage-NURLs"])
        assert not (node / "announcement.yaml").exists()  # nothing secret outside private/
        assert stat.S_IMODE(ann_file.stat().st_mode) == 0o600  # under umask 000
        assert stat.S_IMODE(node.stat().st_mode) == 0o700
        for path in node.rglob("*"):
            if "swiss" in path.name or path.name.startswith(
                ("announcement.yaml", "introducer.furl")
            ):
                assert path.parent.name == "private", path
        procs.stop(proc)
        assert not ann_file.exists()
    assert nurls[0] == nurls[1]
    assert parse_nurl(nurls[0][0]).port != 0
