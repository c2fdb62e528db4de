"""Suite-wide marks: every test under a private-network directory is ``slow``.

CI runs everything; locally ``pytest -m 'not slow'`` skips the suites that
build private networks (Tor, I2P, relays in namespaces), start an S3 server
or drive a browser. A new such suite adds its directory to ``SLOW_DIRS``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SLOW_DIRS = frozenset({"tor", "i2p", "relay", "s3", "browser"})
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).relative_to(_TESTS).parts
        if parts and parts[0] in SLOW_DIRS:
            item.add_marker(pytest.mark.slow)
