"""A live Tahoe-LAFS 1.20 client using a veil account: the servers.yaml entry that
``veil account add --servers-yaml`` prints is all it needs; what it stores is
counted for the account (its leases carry the account's owner_num), and over
the quota it gets a clear refusal that names the quota, with nothing stored."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from veil.formats.container import HEADER_SIZE, LEASE, parse_header

from .tahoe_harness import TahoeGrid, TahoeHarnessError

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]


def veil(*args: str) -> str:
    r = subprocess.run([*VEIL, *args], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def veil_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("accounts-tahoe") / "g"
    veil("grid", "start", str(root), "--servers", "1")
    try:
        yield root / "storage-00"
    finally:
        veil("grid", "stop", str(root))


def _stored_shares(storage: Path) -> list[Path]:
    """The finished share files, <prefix>/<SI>/<shnum>; a storage index may start with a digit."""
    shares = storage / "storage" / "shares"
    return sorted(p for p in shares.glob("*/*/[0-9]*") if p.is_file() and p.parts[-3] != "incoming")


def _lease_owners(share: Path) -> list[int]:
    raw = share.read_bytes()
    header = parse_header(raw)
    records = raw[len(raw) - LEASE.size * header.lease_count :]
    assert len(raw) >= HEADER_SIZE
    return [owner for owner, *_ in LEASE.iter_unpack(records)]


def test_a_tahoe_client_stores_through_an_account_and_is_refused_over_quota(
    tahoe_bin: str, veil_server: Path, tmp_path: Path
) -> None:
    doc = yaml.safe_load(
        veil("-d", str(veil_server), "account", "add", "carol", "--quota", "200k", "--servers-yaml")
    )
    servers = {sid: entry["ann"] for sid, entry in doc["storage"].items()}
    with TahoeGrid(tahoe_bin, tmp_path / "tahoe") as grid:
        tahoe = grid.add_client("carol", needed=1, happy=1, total=1, servers=servers)
        grid.start()
        data = b"carol's file " * 8000  # 104 kB: one share of about that size
        cap = tahoe.put(data)
        assert tahoe.get(cap) == data
        shares = _stored_shares(veil_server)
        assert len(shares) == 1 and _lease_owners(shares[0]) == [2]  # carol is account 2
        status = json.loads(veil("-d", str(veil_server), "status", "--json"))
        carol = {a["name"]: a for a in status["storage"]["accounts"]}["carol"]
        assert carol["shares"] == 1 and 104_000 < carol["bytes"] < 110_000

        with pytest.raises(TahoeHarnessError) as refused:
            tahoe.put(b"too much " * 20_000)  # 180 kB more: over the 200 kB quota
        said = str(refused.value)
        assert "over quota: account 'carol' holds" in said and "200.0 kB quota" in said, said
        assert _stored_shares(veil_server) == shares
        incoming = veil_server / "storage" / "shares" / "incoming"
        assert not incoming.exists() or not any(p.is_file() for p in incoming.rglob("*"))
