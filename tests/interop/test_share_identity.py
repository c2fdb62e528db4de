"""Shares veil writes are byte-identical to those a live Tahoe 1.20 writes, for many N.

One Tahoe storage server (happy=1, so it holds every share) and one Tahoe client
per N upload the same bytes with the same convergence secret; veil's encoder
must produce exactly the bytes the server stored, for N where Tahoe's hash-chain
order is ascending (<= 16) and where it is not (17-20, 100, 255, 256).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veil.formats import base32
from veil.formats.caps import CHKReadCap, parse_cap
from veil.formats.container import HEADER_SIZE, data_length, parse_header

from ..unit.test_vectors import ZfecCoder, encode_data
from .tahoe_harness import TahoeGrid, TahoeNode

NS = (1, 2, 5, 6, 7, 8, 17, 18, 19, 20, 100, 255, 256)
SECRET = bytes(range(32))
DATA = bytes(range(251)) * 8  # 2008 bytes: one segment, not a LIT


@pytest.fixture(scope="module")
def one_server_grid(
    tahoe_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TahoeGrid]:
    with TahoeGrid(tahoe_bin, tmp_path_factory.mktemp("share-identity")) as grid:
        grid.add_storage(1)
        for n in NS:
            grid.add_client(f"client-{n}", needed=min(3, n), happy=1, total=n, convergence=SECRET)
        grid.start()
        yield grid


def _stored_shares(server: TahoeNode, cap: CHKReadCap) -> dict[int, bytes]:
    si = base32.b2a(cap.storage_index)
    bucket = server.path / "storage" / "shares" / si[:2] / si
    shares = {}
    for path in bucket.iterdir():
        raw = path.read_bytes()
        header = parse_header(raw)
        shares[int(path.name)] = raw[HEADER_SIZE : HEADER_SIZE + data_length(len(raw), header)]
    return shares


@pytest.mark.parametrize("n", NS)
def test_veil_shares_equal_live_tahoe_shares(one_server_grid: TahoeGrid, n: int) -> None:
    client = next(c for c in one_server_grid.clients if c.path.name == f"client-{n}")
    cap = parse_cap(client.put(DATA))
    assert isinstance(cap, CHKReadCap)
    k = min(3, n)
    veil_cap, veil_shares = encode_data(DATA, SECRET, k, n, 1048576, 1, ZfecCoder(k, n))
    assert veil_cap == cap
    tahoe_shares = _stored_shares(one_server_grid.storage[0], cap)
    assert sorted(tahoe_shares) == list(range(n))
    differing = [s for s in range(n) if tahoe_shares[s] != veil_shares[s]]
    assert not differing, f"N={n}: shares {differing[:10]} differ from Tahoe's"
