"""Check, repair, leases and expiry between veil and the real Tahoe-LAFS 1.20.

- Tahoe's ``check --verify`` and ``deep-check --verify`` find healthy what veil
  repaired (shares deleted on veil servers' disks, ``veil check --repair``).
- veil's checker reads what Tahoe repaired (``tahoe check --repair``), also a
  mutable directory (Tahoe republishes it with seqnum + 1; veil keeps it).
- veil servers honour a Tahoe client's ``deep-check --add-lease``, and their
  lease index shows it.
- Expiry: Tahoe's own ``LeaseCheckingCrawler`` and veil's expirer run on two
  copies of one storage directory whose leases were granted at various times,
  with the same ``[storage] expire.*`` settings: the same shares and leases
  remain.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.lease_index import SQLiteLeaseIndex
from veil.formats import base32
from veil.formats.container import LEASE_DURATION
from veil.formats.mutable_container import DATA_OFFSET, parse_header
from veil.formats.storage_types import TestWrite
from veil.services.storage.expiry import LeaseExpirer, policy_from_settings
from veil.services.storage.server import StorageServer

from .tahoe_harness import TahoeNode, tahoe_executable

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
DAY = 86400


def veil(node: Path, *args: str, code: int = 0) -> str:
    r = subprocess.run([*VEIL, "-d", str(node), *args], capture_output=True, timeout=180)
    assert r.returncode == code, r.stderr.decode()
    return r.stdout.decode()


@pytest.fixture(scope="module")
def veil_grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("veil-grid") / "g"
    shares = ["--shares-needed", "2", "--shares-happy", "2", "--shares-total", "3"]
    start = [*VEIL, "grid", "start", str(root), "--servers", "4", *shares]
    r = subprocess.run(start, capture_output=True)
    assert r.returncode == 0, r.stderr
    yield root
    subprocess.run([*VEIL, "grid", "stop", str(root)], capture_output=True)


@pytest.fixture(scope="module")
def tahoe_client(veil_grid: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TahoeNode]:
    doc = yaml.safe_load((veil_grid / "client" / "private" / "servers.yaml").read_text())
    servers = {sid: e["ann"] for sid, e in doc["storage"].items()}
    node = TahoeNode.create_client(
        tahoe_executable(),
        tmp_path_factory.mktemp("tc") / "c",
        needed=2,
        happy=2,
        total=3,
        servers=servers,
    )
    node.start()
    try:
        node.wait_ready(connected_servers=len(servers))
        yield node
    finally:
        node.stop()


def _share_files(grid: Path, si: str) -> list[Path]:
    return sorted(grid.glob(f"storage-*/storage/shares/{si[:2]}/{si}/*"))


def test_tahoe_finds_healthy_what_veil_repaired(veil_grid: Path, tahoe_client: TahoeNode) -> None:
    client = veil_grid / "client"
    veil(client, "create-alias", "tahoe")
    veil(client, "mkdir", "tahoe:docs")
    src = veil_grid.parent / "f.bin"
    src.write_bytes(os.urandom(150_000))
    veil(client, "cp", str(src), "tahoe:docs/f.bin")
    root = json.loads(veil(client, "ls", "--json", "tahoe:"))["docs"]["rw_uri"]
    cap = json.loads(veil(client, "ls", "--json", "tahoe:docs"))["f.bin"]["ro_uri"]
    for target in (cap, "tahoe:docs"):
        si = json.loads(veil(client, "check", "--json", target))["storage-index"]
        _share_files(veil_grid, si)[0].unlink()  # 2 of 3 left: recoverable
    assert json.loads(tahoe_client.cli("check", "--raw", cap))["results"]["healthy"] is False
    assert "repair successful" in veil(client, "check", "--repair", cap)
    assert "post-repair: 3 healthy" in veil(client, "deep-check", "--repair", "tahoe:")
    report = json.loads(tahoe_client.cli("check", "--verify", "--raw", cap))
    assert report["summary"] == "Healthy", report
    assert report["results"]["count-shares-good"] == 3
    deep = tahoe_client.cli("deep-check", "--verify", root).decode()
    assert "done: 2 objects checked, 2 healthy, 0 unhealthy" in deep, deep
    assert tahoe_client.cli("get", cap) == src.read_bytes()


def test_veil_reads_what_tahoe_repaired(veil_grid: Path, tahoe_client: TahoeNode) -> None:
    client = veil_grid / "client"
    data = os.urandom(80_000)
    cap = tahoe_client.cli_put(data)
    dircap = tahoe_client.cli("mkdir").decode().strip()
    for target in (cap, dircap):
        si = json.loads(veil(client, "check", "--json", target))["storage-index"]
        _share_files(veil_grid, si)[0].unlink()
        out = tahoe_client.cli("check", "--repair", target).decode()
        assert "repair successful" in out, out
        mine = json.loads(veil(client, "check", "--verify", "--json", target))
        assert mine["summary"] == "Healthy", mine
        assert mine["results"]["count-shares-good"] == 3
    out_file = veil_grid.parent / "back.bin"
    veil(client, "get", cap, str(out_file))
    assert out_file.read_bytes() == data


def test_veil_servers_honour_tahoes_add_lease(veil_grid: Path, tahoe_client: TahoeNode) -> None:
    client = veil_grid / "client"
    veil(client, "mkdir", "tahoe:leased")
    src = veil_grid.parent / "leased.bin"
    src.write_bytes(os.urandom(20_000))
    veil(client, "cp", str(src), "tahoe:leased/f")
    dircap = json.loads(veil(client, "ls", "--json", "tahoe:"))["leased"]["rw_uri"]
    cap = json.loads(veil(client, "ls", "--json", "tahoe:leased"))["f"]["ro_uri"]
    si = base32.a2b(json.loads(veil(client, "check", "--json", cap))["storage-index"])

    def leases() -> list[int]:
        out = []
        for store in sorted(veil_grid.glob("storage-*/storage")):
            index = SQLiteLeaseIndex(store / "lease_index.sqlite")
            out += [len(s.expiries) for s in index.shares_of(si)]
            index.close()
        return sorted(out)

    assert leases() == [1, 1, 1]  # veil's client's lease
    out = tahoe_client.cli("deep-check", "--add-lease", dircap).decode()
    assert "2 objects checked, 2 healthy" in out, out
    assert leases() == [2, 2, 2]  # and the Tahoe client's, in the veil servers' index


TAHOE_EXPIRER = r"""
import json, os, sys
from allmydata.storage.expirer import LeaseCheckingCrawler
from allmydata.util.time_format import parse_date, parse_duration
for store, mode, value, imm, mut in json.loads(sys.argv[1]):
    class Server:
        sharedir = os.path.join(store, "shares")
    override = parse_duration(value) if mode == "age" and value else None
    cutoff = parse_date(value) if mode == "cutoff-date" else None
    kinds = tuple(k for k, on in (("immutable", imm), ("mutable", mut)) if on == "true")
    c = LeaseCheckingCrawler(Server(), os.path.join(store, "lc.state"),
                             os.path.join(store, "lc.history"), True, mode, override, cutoff,
                             kinds)
    c.load_state()
    c.started_cycle(0)
    for prefix in sorted(os.listdir(Server.sharedir)):
        if prefix != "incoming":
            for si in sorted(os.listdir(os.path.join(Server.sharedir, prefix))):
                c.process_bucket(0, prefix, os.path.join(Server.sharedir, prefix), si)
"""


def _aged_store(root: Path, now: float) -> None:
    """Shares whose leases were granted 45, 31, 29 and 5 days ago; one with an old
    and a new lease; mutable shares likewise."""
    backend = DiskBackend(root)
    ages = {1: [45], 2: [31], 3: [29], 4: [5], 5: [45, 5], 6: [45, 40]}
    for n, granted in ages.items():
        si = bytes([n]) * 16
        for i, age in enumerate(granted):
            server = StorageServer(backend=backend, clock=functools.partial(float, now - age * DAY))
            secret = bytes([n, i]) * 16
            if i == 0:
                server.allocate_buckets(
                    si, frozenset({0}), 700, renew_secret=secret, cancel_secret=secret,
                    upload_secret=b"u",
                )  # fmt: skip
                server.write_share_chunk(si, 0, 0, os.urandom(700), upload_secret=b"u")
            else:
                server.add_or_renew_lease(si, renew_secret=secret, cancel_secret=secret)
        msi = bytes([n + 100]) * 16
        server = StorageServer(backend=backend)
        for i, _ in enumerate(granted):
            secret = bytes([n, i, 9, 9]) * 8
            server.mutable_read_test_write(
                msi, {0: TestWrite((), ((0, os.urandom(300)),))}, [],
                write_enabler=b"w" * 32, renew_secret=secret, cancel_secret=secret,
            )  # fmt: skip
        header = parse_header(backend.read_slot(msi, 0, 0, DATA_OFFSET))
        aged = tuple(
            replace(lease, expiry=int(now - age * DAY) + LEASE_DURATION)
            for lease, age in zip(header.leases, granted, strict=True)
        )
        backend.write_slot(msi, 0, [(0, replace(header, leases=aged).pack())])


def _remaining(root: Path) -> dict[str, list[int]]:
    backend = DiskBackend(root, discard_incoming=False)
    out = {}
    for si in backend.storage_indexes():
        for sh in backend.list_shares(si):
            out[f"{si.hex()}/{sh}"] = sorted(x.expiry for x in backend.get_leases(si, sh))
        for sh in backend.list_slots(si):
            header = parse_header(backend.read_slot(si, sh, 0, DATA_OFFSET))
            out[f"{si.hex()}/m{sh}"] = sorted(x.expiry for x in header.leases)
    return out


CONFIGS: list[dict[str, str]] = [
    {"expire.mode": "age", "expire.override_lease_duration": "30 days"},
    {"expire.mode": "age"},  # no override: Tahoe's rule expires nothing
    {"expire.mode": "cutoff-date", "expire.cutoff_date": "@30"},  # 30 days ago
    {"expire.mode": "age", "expire.override_lease_duration": "1 month", "expire.mutable": "false"},
    {"expire.mode": "age", "expire.override_lease_duration": "3 days", "expire.immutable": "no"},
]


def test_expiry_matches_tahoes_crawler(tmp_path: Path) -> None:
    """Each configuration on its own copy of one aged store: Tahoe's crawler (one
    run of Tahoe's Python for all) and veil's expirer leave the same shares."""
    now = time.time()
    _aged_store(tmp_path / "made", now)
    jobs, runs = [], []
    for i, config in enumerate(CONFIGS):
        settings = dict(config, **{"expire.enabled": "true"})
        if settings.get("expire.cutoff_date") == "@30":
            settings["expire.cutoff_date"] = time.strftime("%Y-%m-%d", time.gmtime(now - 30 * DAY))
        for who in ("tahoe", "veil"):
            shutil.copytree(tmp_path / "made", tmp_path / f"{who}{i}")
        value = settings.get("expire.override_lease_duration") or settings.get(
            "expire.cutoff_date", ""
        )
        flags = [
            "false" if settings.get(k, "true") in ("false", "no") else "true"
            for k in ("expire.immutable", "expire.mutable")
        ]
        jobs.append([str(tmp_path / f"tahoe{i}"), settings["expire.mode"], value, *flags])
        runs.append(settings)
    python = str(Path(tahoe_executable()).parent / "python")
    r = subprocess.run(
        [python, "-c", TAHOE_EXPIRER, json.dumps(jobs)], capture_output=True, timeout=120
    )
    assert r.returncode == 0, r.stderr.decode()
    for i, settings in enumerate(runs):

        def get(key: str, default: str, settings: dict[str, str] = settings) -> str:
            return settings.get(key, default)

        store = tmp_path / f"veil{i}"
        backend = DiskBackend(store)
        index = SQLiteLeaseIndex(store / "lease_index.sqlite")
        lock = StorageServer(backend=backend).lease_lock
        LeaseExpirer(backend, index, policy_from_settings(get), lock=lock).run_pass()
        index.close()
        assert _remaining(store) == _remaining(tmp_path / f"tahoe{i}"), settings
        if "expire.override_lease_duration" in settings or "expire.cutoff_date" in settings:
            assert _remaining(store) != _remaining(tmp_path / "made"), settings  # some went
