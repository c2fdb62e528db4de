"""Marks for the Tor tests. The session's private Tor network (``tor_network``)
is in tests/conftest.py, shared with the I2P tests' mixed grid."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tor: runs on the private Tor test network")
