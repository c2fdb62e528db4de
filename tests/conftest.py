"""Suite-wide marks (every test under a private-network directory is ``slow``)
and the session's private Tor network (``tor_network``), shared by tests/tor and
the mixed grid of tests/i2p.

CI runs everything; locally ``pytest -m 'not slow'`` skips the suites that
build private networks (Tor, I2P, relays in namespaces), start an S3 server
or drive a browser. A new such suite adds its directory to ``SLOW_ORDER``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.tor.privnet import TorNetwork

_TESTS = Path(__file__).parent


# The slow suites run last, in this order, each as one block, so that their
# package-scoped networks (and the Playwright loop of tests/browser, which must not
# outlive its package) are torn down before the next suite starts; i2p sits next
# to tor, whose session-wide network both use.
SLOW_ORDER = ("browser", "s3", "relay", "i2p", "tor")


def _rank(item: pytest.Item) -> int:
    parts = Path(str(item.path)).relative_to(_TESTS).parts
    top = parts[0] if parts else ""
    return SLOW_ORDER.index(top) + 1 if top in SLOW_ORDER else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _rank(item):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_rank)  # stable: the order within each suite is kept


@pytest.fixture(scope="session")
def tor_network() -> Iterator[TorNetwork]:
    """The session's private Tor network, started once for every suite that
    uses it (tests/tor, the mixed grid of tests/i2p); tor processes also exit if
    pytest dies (``__OwningControllerProcess``)."""
    from tests.tor.privnet import TorNetwork, free_base_port

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
