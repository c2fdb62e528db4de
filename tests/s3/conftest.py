"""One SeaweedFS S3 gateway (``weed mini`` on loopback, free ports) per session.

Every test gets its own key prefix in the one bucket, so tests share the
store and never see each other's shares. The store is stopped by its PID.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.adapters.storage.s3_client import S3Settings
from veil.testing.seaweedfs import SeaweedFS


@pytest.fixture(scope="package")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS.start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_settings(seaweedfs: SeaweedFS) -> S3Settings:
    """Settings for a prefix of the bucket that only this test uses."""
    if seaweedfs.process is None or seaweedfs.process.poll() is not None:
        seaweedfs.restart()  # a fault test left it stopped
    return seaweedfs.settings(f"t-{os.urandom(6).hex()}/")


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"
