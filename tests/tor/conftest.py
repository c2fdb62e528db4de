"""The session's private Tor network (``tor_network``), started once for all
Tor tests and stopped at the end; tor processes also exit if pytest dies
(``__OwningControllerProcess``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .privnet import TorNetwork, free_base_port


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tor: runs on the private Tor test network")


@pytest.fixture(scope="session")
def tor_network() -> Iterator[TorNetwork]:
    for tool in ("tor", "tor-gencert"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.fail(f"{tool} is not installed: run scripts/setup.sh (it installs Debian's tor)")
    root = Path(tempfile.mkdtemp(prefix="veil-tor-", dir="/tmp"))  # short: unix socket paths
    net = TorNetwork.create(root / "net", free_base_port())
    try:
        for attempt in (1, 2):
            net.start(owner_pid=os.getpid())
            try:
                ready = net.wait_ready(180)
                break
            except TimeoutError as exc:
                tail = net.notice_tail()
                net.stop()
                if attempt == 2:
                    pytest.fail(f"the private Tor network did not come up: {exc}\n{tail}")
        print(f"\nprivate Tor network ready in {ready:.1f} s")
        yield net
    finally:
        net.stop()
        shutil.rmtree(root, ignore_errors=True)
