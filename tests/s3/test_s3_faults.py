"""Faults of a veil server on S3: the store killed in the middle of an upload
and of a mutable write, then restarted; the server's machine lost and a new
server started from a copy of its configuration and ``private/``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.s3.s3_node import S3StorageNode, client_node
from tests.s3.test_s3_node import share_keys, veil_get, veil_put
from veil.adapters.node.client_session import open_client
from veil.adapters.storage.s3 import S3Backend
from veil.adapters.storage.s3_client import S3Connection, S3Settings
from veil.errors import VeilError
from veil.formats.caps import CHKReadCap, parse_read_cap
from veil.formats.mutable_caps import SSKWriteCap, parse_user_cap
from veil.testing.seaweedfs import SeaweedFS

pytestmark = pytest.mark.integration


def _uploads_in_progress(settings: S3Settings) -> int:
    connection = S3Connection(settings)
    try:
        page = connection.call("list_multipart_uploads", Prefix=settings.key_prefix)
        return len(page.get("Uploads", ()))
    finally:
        connection.close()


def test_s3_killed_mid_upload_fails_cleanly_and_complete_files_survive(
    seaweedfs: SeaweedFS, s3_settings: S3Settings, tmp_path: Path
) -> None:
    node = S3StorageNode.create(tmp_path / "server", s3_settings)
    node.start()
    try:
        client = client_node(tmp_path / "client", [node])
        kept = os.urandom(2_000_000)
        kept_cap = asyncio.run(veil_put(client, kept))
        before = set(share_keys(s3_settings))
        big = os.urandom(40_000_000)  # 20 MB shares: three parts each
        outcome: list[BaseException | str] = []

        def upload() -> None:
            try:
                outcome.append(asyncio.run(veil_put(client, big)))
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=upload)
        worker.start()
        deadline = time.monotonic() + 60
        while _uploads_in_progress(s3_settings) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert time.monotonic() < deadline, "no multipart upload started"
        seaweedfs.kill()
        worker.join(timeout=120)
        assert not worker.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], VeilError), outcome  # no cap
        seaweedfs.restart()
        assert set(share_keys(s3_settings)) == before  # no partial share was stored
        assert asyncio.run(veil_get(client, kept_cap)) == kept  # the same server, reconnected
        node.stop()
        node.start()  # a restart aborts what the store kept of the unfinished upload
        assert _uploads_in_progress(s3_settings) == 0
        assert asyncio.run(veil_get(client, kept_cap)) == kept
        assert "Traceback" not in node.log_tail()
    finally:
        node.stop()


def test_a_mutable_write_cut_by_the_store_dying_leaves_old_or_new(
    seaweedfs: SeaweedFS, s3_settings: S3Settings, tmp_path: Path
) -> None:
    si = os.urandom(16)
    old, new = b"\x01" * 12_000_000, b"\x02" * 12_000_000
    backend = S3Backend(s3_settings, spool_dir=tmp_path / "spool")
    try:
        backend.write_slot(si, 0, [(0, old)])
        failed: list[OSError] = []

        def write() -> None:
            try:
                backend.write_slot(si, 0, [(0, new)])
            except OSError as exc:
                failed.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.1)  # the 12 MB PUT is on its way
        seaweedfs.kill()
        writer.join(timeout=120)
        assert not writer.is_alive()
    finally:
        backend.close()
    seaweedfs.restart()
    again = S3Backend(s3_settings, spool_dir=tmp_path / "spool")
    try:
        stored = again.read_slot(si, 0, 0, 20_000_000)
        assert stored == (old if failed else new)  # whole: never a mix
    finally:
        again.close()


async def _mutable(client: Path, action: str, cap: str = "", data: bytes = b"") -> str | bytes:
    async with open_client(client) as c:
        files = c.mutable_files()
        if action == "create":
            return (await files.create(data)).to_string()
        write = parse_user_cap(cap)
        assert isinstance(write, SSKWriteCap)
        return await files.read(write)


def _leases(settings: S3Settings, si: bytes) -> list[list[bytes]]:
    backend = S3Backend(settings)
    try:
        return [
            [lease.pack() for lease in backend.get_leases(si, n)]
            for n in sorted(backend.list_shares(si))
        ]
    finally:
        backend.close()


def test_a_lost_server_comes_back_from_private_and_the_bucket(
    s3_settings: S3Settings, tmp_path: Path
) -> None:
    node = S3StorageNode.create(tmp_path / "server", s3_settings)
    node.start()
    client = client_node(tmp_path / "client", [node])
    try:
        files = {
            asyncio.run(veil_put(client, d)): d for d in (os.urandom(n) for n in (900, 3_000_000))
        }
        mutable = str(asyncio.run(_mutable(client, "create", data=b"a mutable file")))
    finally:
        node.stop()
    sis = [c.storage_index for c in map(parse_read_cap, files) if isinstance(c, CHKReadCap)]
    leases = {si: _leases(s3_settings, si) for si in sis}
    assert all(len(v) == 3 and all(v) for v in leases.values())
    # the machine is lost; its owner kept the node directory but for storage/
    # (here only a spool) and logs: tahoe.cfg, node.pubkey and private/
    backup = tmp_path / "backup"
    shutil.copytree(node.path, backup, ignore=shutil.ignore_patterns("storage", "logs"))
    assert {"node.pubkey", "private", "tahoe.cfg"} <= {p.name for p in backup.iterdir()}
    shutil.rmtree(node.path)
    new_home = tmp_path / "new-machine"
    shutil.copytree(backup, new_home)
    reborn = S3StorageNode(new_home)
    reborn.start()
    try:
        assert reborn.server_id == node.server_id and reborn.ann == node.ann
        for cap, data in files.items():
            assert asyncio.run(veil_get(client, cap)) == data
        assert asyncio.run(_mutable(client, "read", mutable)) == b"a mutable file"
        assert {si: _leases(s3_settings, si) for si in sis} == leases  # with their leases
        # the lease index (SQLite, beside the server) is rebuilt from the bucket alone
        status = new_home / "storage" / "expiry-status.json"
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        figures = json.loads(status.read_text())
        assert figures["shares-held"] == 9 and figures["leases-held"] == 9, figures
    finally:
        reborn.stop()
