"""veil's batch extension over real HTTPS: the standard calls' guarantees hold."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from veil.errors import BadRequest, ServerUnavailable, Unauthorized
from veil.formats import wire_batch as wb
from veil.formats.params import EncodingParameters
from veil.services.broker import StorageBroker
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader

from .conftest import start_live_server

pytestmark = pytest.mark.integration
R, C, U = b"r" * 32, b"c" * 32, b"u" * 32


async def test_batch_round_trip_and_refusals(tmp_path: Path) -> None:
    server = await start_live_server(tmp_path / "s")
    client = server.client()
    try:
        version = await client.get_version()
        assert wb.offers_batch(version.application_version)
        si = os.urandom(16)
        shares = {0: os.urandom(1000), 5: os.urandom(1000)}
        [res] = await client.upload_batch([wb.BatchUpload(si, 1000, R, C, U, shares)])
        assert res.written == {0, 5}
        assert await client.read_share_chunk(si, 5, 0, 1000) == shares[5]
        assert await client.read_batch([si, os.urandom(16)]) == [shares, {}]
        # a malformed item is a 400 for the whole request, and nothing is written
        bad = wb.BatchUpload(os.urandom(16), 10, R, C, U, {0: b"short"})
        with pytest.raises(BadRequest):
            await client.upload_batch([bad])
        assert await client.read_batch([bad.storage_index]) == [{}]
        # the swissnum is checked as on every route
        wrong = type(client)(
            replace(server.nurl, swissnum="x" * 32),
            server_id=client.server_id,
            lease_seed=client.lease_seed,
            permutation_seed=client.permutation_seed,
        )
        with pytest.raises(Unauthorized):
            await wrong.upload_batch([wb.BatchUpload(os.urandom(16), 1, R, C, U, {0: b"a"})])
        await wrong.close()
    finally:
        await client.close()
        await server.http.stop()


async def test_small_files_through_http_servers_and_a_dead_one(tmp_path: Path) -> None:
    servers = [await start_live_server(tmp_path / f"s{i}") for i in range(6)]
    clients = [s.client() for s in servers]
    broker = StorageBroker(clients)
    params = EncodingParameters(needed=2, happy=4, total=5)
    try:
        up = Uploader(broker, params, lease_secret=b"l" * 32, convergence_secret=b"v" * 32)
        await servers[0].http.stop()  # dead before the upload
        data = os.urandom(9000)
        result = await up.upload_bytes(data)
        assert result.happiness >= 4
        assert servers[0].core.list_shares(result.cap.storage_index) == set()
        assert await Downloader(broker).download_bytes(result.cap) == data
        await servers[1].http.stop()
        assert await Downloader(broker).download_bytes(result.cap) == data
    finally:
        for c in clients:
            await c.close()
        for s in servers[2:]:
            await s.http.stop()


async def test_oversized_batches_are_refused(tmp_path: Path) -> None:
    server = await start_live_server(tmp_path / "s")
    client = server.client()
    try:
        big = wb.BatchUpload(os.urandom(16), wb.MAX_BATCH_SHARE + 1, R, C, U, {0: b"a"})
        with pytest.raises((BadRequest, ServerUnavailable)):
            await client.upload_batch([big])
    finally:
        await client.close()
        await server.http.stop()
