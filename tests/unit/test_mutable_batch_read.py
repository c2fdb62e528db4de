"""veil's mutable read extension: a server map in one request per server where the
server offers it, the standard listing and reads otherwise, the same answers."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from veil.adapters.storage.in_process_client import LocalStorageClient
from veil.errors import BadRequest, NotFound, RemoteError
from veil.formats import wire_batch as wb
from veil.formats.params import EncodingParameters
from veil.formats.wire import dumps
from veil.services.broker import StorageBroker
from veil.services.mutable.files import FIRST_READ, MutableFiles
from veil.services.storage.server import APPLICATION_VERSION
from veil.testing.local_grid import local_grid, same_servers_as

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def files(broker: StorageBroker) -> MutableFiles:
    return MutableFiles(
        broker, EncodingParameters(2, 3, 4), lease_secret=b"s" * 32, keygen=lambda: _KEY
    )


def test_a_veil_server_announces_it_and_hostile_bytes_are_refused() -> None:
    assert wb.offers_batch(APPLICATION_VERSION, wb.MUTABLE_READ_EXTENSION)
    assert not wb.offers_batch(b"veil/0.3 +batch-v1", wb.MUTABLE_READ_EXTENSION)
    assert not wb.offers_batch(b"tahoe-lafs/1.20.0 +mutable-read-v1", wb.MUTABLE_READ_EXTENSION)
    si = os.urandom(16)
    assert wb.decode_mutable_read_request(wb.encode_mutable_read_request(si, 4000)) == (si, 4000)
    for bad in (
        dumps({"storage-index": si, "length": 0}),
        dumps({"storage-index": si, "length": wb.MAX_MUTABLE_PREFIX + 1}),
        dumps({"storage-index": si[:5], "length": 10}),
        dumps({"storage-index": si, "length": 10, "more": 1}),
        dumps([si]),
        b"\xff" * 2000,
    ):
        with pytest.raises(BadRequest):
            wb.decode_mutable_read_request(bad)
    good = wb.encode_mutable_read_answer({1: b"a" * 10, 0: b"b"})
    assert wb.decode_mutable_read_answer(good, 10) == {0: b"b", 1: b"a" * 10}
    for hostile in (
        wb.encode_mutable_read_answer({0: b"a" * 11}),  # more than asked for
        dumps({256: b"a"}),
        dumps({0: 5}),
        dumps([b"a"]),
        b"\x00" * (256 * 26 + 17),
    ):
        with pytest.raises(RemoteError):
            wb.decode_mutable_read_answer(hostile, 10)


def calls(clients: list[LocalStorageClient]) -> int:
    return sum(c.calls for c in clients)


@pytest.mark.parametrize("size", [100, FIRST_READ * 3])  # in the first read, and longer
async def test_one_request_per_server_once_its_version_is_known(size: int) -> None:
    broker, clients = local_grid(4, mutable_batch=True)
    mf = files(broker)
    data = os.urandom(size)
    cap = await mf.create(data)
    read_cap = cap.read_cap()
    # versions not known yet (a fresh process): the protocol's listing and reads
    before = calls(clients)
    assert await mf.read(read_cap) == data
    standard = calls(clients) - before
    await broker.versions(clients)
    before = calls(clients)
    assert await mf.read(read_cap) == data
    batched = calls(clients) - before
    longer = 1 if size > FIRST_READ else 0  # each share read once more, whole
    asked = 2 + 2  # k + READ_MARGIN of the four servers
    assert standard == asked * (2 + longer)
    assert batched == asked * (1 + longer)
    # and a write's server map, which asks every server, gives the same map both ways
    contents, known = await mf.read_for_change(cap)
    assert contents == data and known is not None
    assert sorted((s.server.server_id, s.shnum) for s in known.seen) == sorted(
        (c.server_id, n)
        for c in clients
        for n in c.service.mutable_list_shares(read_cap.storage_index)
    )


async def test_servers_without_it_get_the_standard_calls() -> None:
    broker, clients = local_grid(4, batch=True)  # +batch-v1 only: an older veil
    mf = files(broker)
    cap = await mf.create(b"contents")
    await broker.versions(clients)
    before = calls(clients)
    assert await mf.read(cap.read_cap()) == b"contents"
    assert calls(clients) - before == 4 * 2


class _RouteGone(LocalStorageClient):
    """A server that announced the extension when its version was cached and has
    since been replaced by one without it: the route answers 404."""

    async def mutable_read_batch(self, storage_index: bytes, length: int) -> dict[int, bytes]:
        await self._gate()
        raise NotFound("no such route")


async def test_a_404_falls_back_to_the_standard_calls_and_forgets_the_version() -> None:
    _, plain = local_grid(4, mutable_batch=True)
    clients = same_servers_as(_RouteGone, plain)
    broker = StorageBroker(clients)
    mf = files(broker)
    cap = await mf.create(b"still readable")
    await broker.versions(clients)
    assert await mf.read(cap.read_cap()) == b"still readable"
    # the read asked all four (k + margin): each answered 404, and is asked again later
    assert [broker.known_version(c) for c in clients] == [None] * 4
