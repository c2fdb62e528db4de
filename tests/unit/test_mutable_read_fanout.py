"""An SDMF read asks only the first k + 2 servers of the ring, as Tahoe's MODE_READ,
and the rest only when those cannot give the newest recoverable version."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import rsa

from veil.formats.params import EncodingParameters
from veil.services.mutable.files import MutableFiles
from veil.services.mutable.server_map import READ_MARGIN
from veil.testing.local_grid import local_grid

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def grid(count: int = 10) -> tuple[MutableFiles, list]:  # type: ignore[type-arg]
    broker, clients = local_grid(count)
    mf = MutableFiles(
        broker, EncodingParameters(3, 7, 10), lease_secret=b"s" * 32, keygen=lambda: _KEY
    )
    return mf, clients


def asked(clients: list, before: dict[str, int]) -> set[str]:  # type: ignore[type-arg]
    return {c.server_id for c in clients if c.calls > before[c.server_id]}


async def test_a_read_asks_k_plus_margin_servers() -> None:
    mf, clients = grid()
    data = os.urandom(5000)
    cap = await mf.create(data)
    before = {c.server_id: c.calls for c in clients}
    assert await mf.read(cap.read_cap()) == data
    ring = [s.server_id for s in mf.broker.permuted(cap.read_cap().storage_index)]
    assert asked(clients, before) == set(ring[: 3 + READ_MARGIN])


async def test_a_read_goes_on_when_the_first_servers_are_down_or_stale() -> None:
    mf, clients = grid()
    cap = await mf.create(b"version one")
    ring = mf.broker.permuted(cap.read_cap().storage_index)
    by_id = {c.server_id: c for c in clients}
    for server in ring[:4]:
        by_id[server.server_id].fail = True
    assert await mf.read(cap.read_cap()) == b"version one"  # the rest of the ring was asked
    # the first servers come back holding the old version after a write they missed
    await mf.overwrite(cap, b"version two")
    for server in ring[:4]:
        by_id[server.server_id].fail = False
    assert await mf.read(cap.read_cap()) == b"version two"


async def test_an_mdmf_read_asks_k_plus_margin_servers() -> None:
    mf, clients = grid()
    data = os.urandom(300_000)  # several segments
    cap = await mf.mdmf().create(data)
    before = {c.server_id: c.calls for c in clients}
    assert await mf.read(cap.read_cap()) == data
    ring = [s.server_id for s in mf.broker.permuted(cap.read_cap().storage_index)]
    assert asked(clients, before) == set(ring[: 3 + READ_MARGIN])


async def test_an_mdmf_read_widens_when_the_first_servers_fail_mid_read() -> None:
    mf, clients = grid()
    data = os.urandom(300_000)
    cap = await mf.mdmf().create(data)
    ring = mf.broker.permuted(cap.read_cap().storage_index)
    by_id = {c.server_id: c for c in clients}
    chunks = []
    stream = mf.mdmf().stream(cap.read_cap())
    chunks.append(await anext(stream))  # the map was made from the first k + 2 servers
    for server in ring[:3]:
        by_id[server.server_id].fail = True  # three of them die before the next segment
    chunks.extend([c async for c in stream])
    assert b"".join(chunks) == data
