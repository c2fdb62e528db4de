"""Lease expiry (``veil.services.storage.expiry``) on a veil server on S3: a share
whose lease lapsed is deleted from the bucket with its lease records."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.s3.s3_node import S3StorageNode, client_node
from tests.s3.test_s3_node import share_keys, veil_get, veil_put
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.storage.s3_client import S3Settings
from veil.formats import base32
from veil.formats.caps import CHKReadCap, parse_read_cap

pytestmark = pytest.mark.integration


def test_expired_shares_leave_the_bucket(s3_settings: S3Settings, tmp_path: Path) -> None:
    node = S3StorageNode.create(tmp_path / "server", s3_settings)
    config = NodeDirectory(node.path)
    for key, value in {
        "expire.enabled": "true",
        "expire.mode": "age",
        "expire.override_lease_duration": "3 seconds",
    }.items():
        config.config.set("storage", key, value)
    config.save_config()
    node.start()
    try:
        client = client_node(tmp_path / "client", [node])
        data = os.urandom(200_000)
        cap = asyncio.run(veil_put(client, data))
        assert asyncio.run(veil_get(client, cap)) == data
        read = parse_read_cap(cap)
        assert isinstance(read, CHKReadCap)
        si = base32.b2a(read.storage_index)

        def keys() -> list[str]:
            return [k for kind in ("shares", "leases") for k, _ in share_keys(s3_settings, kind)]

        assert sum(si in k for k in keys()) == 6  # three shares, three lease records
        deadline = time.monotonic() + 30
        while any(si in k for k in keys()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(si in k for k in keys())
    finally:
        node.stop()
