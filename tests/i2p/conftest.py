"""The session's private I2P network (``i2p_network``): i2pd routers in a
network namespace (``privnet.py``), started once for all I2P tests and
stopped at the end; the routers also get SIGTERM if pytest dies."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .privnet import I2PD, I2PNetwork


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "i2p: runs on the private I2P test network")


@pytest.fixture(scope="package")
def i2p_network() -> Iterator[I2PNetwork]:
    assert os.geteuid() == 0, "the I2P test network needs root (network namespaces)"
    if not Path(I2PD).exists():
        pytest.fail("i2pd is not installed: run scripts/setup.sh (it installs Debian's i2pd)")
    root = Path(tempfile.mkdtemp(prefix="veil-i2p-", dir="/tmp"))
    net = None
    try:
        for attempt in (1, 2):
            net = I2PNetwork.create(root / f"net{attempt}")
            try:
                ready = net.start()
                break
            except (TimeoutError, RuntimeError) as exc:
                net.stop()
                if attempt == 2:
                    pytest.fail(f"the private I2P network did not come up: {exc}")
        print(f"\nprivate I2P network ready in {ready:.1f} s")
        assert net is not None
        yield net
    finally:
        if net is not None:
            net.stop()
        shutil.rmtree(root, ignore_errors=True)
