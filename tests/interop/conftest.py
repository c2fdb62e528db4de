"""Fixtures running the real Tahoe-LAFS 1.20.0 on 127.0.0.1 (see tests/interop/tahoe_harness.py).

``tahoe_bin`` installs Tahoe once per session (cached in ~/.cache/veil, ~25 s the
first time, ~1 s after). ``small_tahoe_grid`` is one grid per test module: three
storage nodes and a client ``client`` (2-of-3, happy 2), started in about 3 s.
Every test collected under tests/interop/ is marked ``integration``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .tahoe_harness import TahoeGrid, tahoe_executable

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def tahoe_bin() -> str:
    """Path of Tahoe 1.20.0's ``tahoe`` (runs scripts/install-tahoe.sh if needed)."""
    return tahoe_executable()


@pytest.fixture(scope="module")
def small_tahoe_grid(
    tahoe_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TahoeGrid]:
    """Three Tahoe storage nodes and one Tahoe client ``client`` (k=2, happy=2, N=3).

    More nodes may be added by a test (``add_client`` then ``start``); all are
    stopped at the end of the module.
    """
    with TahoeGrid(tahoe_bin, tmp_path_factory.mktemp("tahoe-grid")) as grid:
        grid.add_storage(3)
        grid.add_client("client", needed=2, happy=2, total=3)
        grid.start()
        yield grid
