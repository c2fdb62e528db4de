"""Accounts on a running storage node (``veil grid``, real processes): a friend's
veil client reaches it through the NURL ``veil account add`` printed (in its
servers.yaml), what each account stores is counted in the welcome JSON and in
``veil status`` of the storage node, and an upload over the quota is refused
with one line naming the server and "quota", leaving nothing stored."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.frontends.cli.main import main

pytestmark = pytest.mark.integration
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("accounts") / "g"
    shares = ["--shares-needed", "1", "--shares-happy", "1", "--shares-total", "1"]
    subprocess.run(
        [*VEIL, "grid", "start", str(root), "--servers", "1", *shares], check=True, timeout=90
    )
    try:
        yield root
    finally:
        subprocess.run([*VEIL, "grid", "stop", str(root)], check=True, timeout=60)


def veil(capsys: pytest.CaptureFixture[str], node: Path, *args: str, code: int = 0) -> str:
    got = main(["-d", str(node), *args])
    out, err = capsys.readouterr()
    assert got == code, err
    assert "Traceback" not in err
    return out if code == 0 else err


def _stored(store: Path) -> list[Path]:
    return sorted(p for p in (store / "storage" / "shares").rglob("*") if p.is_file())


def _welcome(node: Path) -> dict[str, object]:
    """GET /?t=json from the storage node's own web gateway (real HTTP, loopback)."""
    from veil.adapters.web.gateway import start_web_gateway

    async def ask() -> dict[str, object]:
        running = await start_web_gateway(node, "tcp:0:interface=127.0.0.1")
        try:
            url = f"http://127.0.0.1:{running.port}/?t=json"
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=30).read())
            return dict(json.loads(body))
        finally:
            await running.stop()

    return asyncio.run(ask())


def test_a_friend_stores_through_an_account_and_is_counted_and_limited(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = grid / "storage-00"
    yaml_text = veil(capsys, store, "account", "add", "alice", "--quota", "300k", "--servers-yaml")
    friend = tmp_path / "alice"
    shutil.copytree(grid / "client", friend)
    (friend / "private" / "servers.yaml").write_text(yaml_text)
    os.chmod(friend / "private" / "servers.yaml", 0o600)

    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(100_000))
    cap = veil(capsys, friend, "put", str(small)).strip()
    veil(capsys, friend, "get", cap, str(tmp_path / "back.bin"))  # read through the account
    assert (tmp_path / "back.bin").read_bytes() == small.read_bytes()
    public = tmp_path / "public.bin"
    public.write_bytes(os.urandom(20_000))
    veil(capsys, grid / "client", "put", str(public))  # the announced swissnum: anonymous

    status = json.loads(veil(capsys, store, "status", "--json"))
    accounts = {a["name"]: a for a in status["storage"]["accounts"]}
    assert accounts["alice"]["shares"] == 1 and 100_000 < accounts["alice"]["bytes"] < 110_000
    assert accounts["alice"]["quota"] == 300_000
    assert accounts["anonymous"]["shares"] == 1 and accounts["anonymous"]["quota"] is None
    text = veil(capsys, store, "status")
    assert "account alice" in text and "quota 300.0 kB" in text
    welcome = _welcome(store)
    assert welcome["storage"]["accounts"] == status["storage"]["accounts"]  # type: ignore[index]

    before = _stored(store)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(250_000))
    err = veil(capsys, friend, "put", str(big), code=1)
    first = err.strip().splitlines()[0]
    assert "quota" in first and "account 'alice'" in first and "server v0-" in first, err
    assert "full" not in first and len(err.strip().splitlines()) <= 2
    assert _stored(store) == before  # nothing half-stored
    # the operator lets alice store more, and refuses anonymous uploads: at once
    veil(capsys, store, "account", "set-quota", "alice", "1M")
    veil(capsys, store, "account", "set-quota", "anonymous", "0")
    veil(capsys, friend, "put", str(big))
    other = tmp_path / "other.bin"
    other.write_bytes(os.urandom(1000))
    err = veil(capsys, grid / "client", "put", str(other), code=1)
    assert "no new shares from anonymous clients" in err.splitlines()[0]
    listed = json.loads(veil(capsys, store, "account", "list", "--json"))
    assert {a["name"]: a["shares"] for a in listed["accounts"]} == {"anonymous": 1, "alice": 2}
    # a removed account's NURL stops working
    veil(capsys, store, "account", "set-quota", "anonymous", "none")
    veil(capsys, store, "account", "remove", "alice")
    err = veil(capsys, friend, "put", str(public), code=1)
    assert "401" in err or "Authorization" in err
