"""Accounting on a veil server on S3 survives the machine: a new server started
from ``private/`` (which holds the accounts) and the bucket rebuilds the lease
index from the bucket's lease records, and with it every account's figures
and quota."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.s3.s3_node import VEIL, S3StorageNode
from tests.s3.test_s3_node import veil_put
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.storage.s3_client import S3Settings
from veil.errors import UnhappinessError
from veil.formats.params import EncodingParameters

pytestmark = pytest.mark.integration


def veil(*args: str) -> str:
    r = subprocess.run([*VEIL, *args], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _figures(node: Path) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + 30
    while not (node / "storage" / "expiry-status.json").exists():
        assert time.monotonic() < deadline, "no figures written"
        time.sleep(0.1)
    status = json.loads(veil("-d", str(node), "status", "--json"))
    return {a["name"]: a for a in status["storage"]["accounts"]}


def test_accounting_on_s3_is_rebuilt_from_the_bucket_on_a_new_machine(
    s3_settings: S3Settings, tmp_path: Path
) -> None:
    node = S3StorageNode.create(tmp_path / "server", s3_settings)
    node.start()
    params = EncodingParameters(2, 1, 3)
    anonymous = NodeDirectory.create(tmp_path / "anon", storage=False, params=params)
    anonymous.write_servers({node.server_id: node.ann})
    friend = NodeDirectory.create(tmp_path / "dana", storage=False, params=params)
    try:
        entry = yaml.safe_load(
            veil("-d", str(node.path), "account", "add", "dana", "--quota", "1M", "--servers-yaml")
        )
        friend.write_servers({sid: e["ann"] for sid, e in entry["storage"].items()})
        asyncio.run(veil_put(friend.path, os.urandom(400_000)))  # 3 shares of 200 kB
        asyncio.run(veil_put(anonymous.path, os.urandom(1000)))
        before = _figures(node.path)
        assert before["dana"]["shares"] == 3 and before["anonymous"]["shares"] == 3
    finally:
        node.stop()
    backup = tmp_path / "backup"  # what the owner kept: all but storage/ and logs
    shutil.copytree(node.path, backup, ignore=shutil.ignore_patterns("storage", "logs"))
    shutil.rmtree(node.path)
    new_home = tmp_path / "new-machine"
    shutil.copytree(backup, new_home)
    reborn = S3StorageNode(new_home)
    reborn.start()
    try:
        assert _figures(new_home) == before  # names, shares, bytes, quotas
        with pytest.raises(UnhappinessError, match="over quota: account 'dana'"):
            asyncio.run(veil_put(friend.path, os.urandom(500_000)))  # 750 kB more
    finally:
        reborn.stop()
