"""The backend conformance suite (``veil.testing.backend_conformance``) on the
disk and memory backends; tests/s3 runs the same checks on S3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.memory import MemoryBackend
from veil.testing.backend_conformance import CHECKS, OpenBackend


@pytest.fixture(params=["disk", "memory"])
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> OpenBackend:
    if request.param == "disk":
        return lambda: DiskBackend(tmp_path / "storage")
    memory = MemoryBackend()
    return lambda: memory


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
def test_backend_conformance(
    open_backend: OpenBackend, check: Callable[[OpenBackend], None]
) -> None:
    check(open_backend)
