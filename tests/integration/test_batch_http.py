"""veil's batch extension over real HTTPS: the standard calls' guarantees hold."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from veil.errors import BadRequest, ServerUnavailable, Unauthorized
from veil.formats import base32
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


async def test_a_lone_small_batch_is_flushed_in_the_cores_turn_others_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread hop for a small batch when nothing else waits for the core; a large
    batch, or one with others queued behind it, leaves its flush to the flush pool so
    the core goes on (group commit). Either way the answer comes after the fsyncs."""
    fsyncs: list[tuple[str, str]] = []  # (path, thread)
    real_fsync, real_replace = os.fsync, os.replace
    slow = {"first": True}

    def fsync(fd: int) -> None:
        fsyncs.append((os.readlink(f"/proc/self/fd/{fd}"), threading.current_thread().name))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        if slow["first"]:  # the first batch's work outlasts the arrival of the second
            slow["first"] = False
            time.sleep(0.6)
        real_replace(src, dst)

    server = await start_live_server(tmp_path / "s")
    client = server.client()
    monkeypatch.setattr(os, "fsync", fsync)
    try:

        def batch(items: int, shares: int) -> list[wb.BatchUpload]:
            return [
                wb.BatchUpload(
                    os.urandom(16), 100, R, C, U, {s: os.urandom(100) for s in range(shares)}
                )
                for _ in range(items)
            ]

        def threads_of(items: list[wb.BatchUpload]) -> set[str]:
            names = {i.storage_index for i in items}
            root = server.cert_dir / "storage"
            mine = [t for p, t in fsyncs if any(str(root) in p and _si(n) in p for n in names)]
            assert mine, "every share is fsynced"
            return {t.rstrip("_0123456789") for t in mine}

        alone = batch(1, 2)  # 2 shares < durable.PARALLEL_FROM
        [res] = await client.upload_batch(alone)
        assert res.written == {0, 1}
        assert threads_of(alone) == {"veil-storage"}

        large = batch(3, 2)  # 6 shares: the files in fsync threads, the directories after
        assert all(r.written == {0, 1} for r in await client.upload_batch(large))
        assert threads_of(large) == {"veil-fsync", "veil-flush"}

        monkeypatch.setattr(os, "replace", replace)
        first, second = batch(1, 1), batch(1, 1)
        one = asyncio.ensure_future(client.upload_batch(first))
        await asyncio.sleep(0.1)  # the first is in the core, sleeping in its rename
        two = asyncio.ensure_future(client.upload_batch(second))
        assert [r.written for r in await one] == [{0}]
        assert [r.written for r in await two] == [{0}]
        assert threads_of(first) == {"veil-flush"}  # the second was waiting: not inline
        assert threads_of(second) == {"veil-storage"}  # nothing waited behind it
        for items in (alone, large, first, second):
            for i in items:
                assert server.core.list_shares(i.storage_index) == set(i.shares)
    finally:
        await client.close()
        await server.http.stop()


def _si(storage_index: bytes) -> str:
    return base32.b2a(storage_index)


async def test_the_mutable_read_over_https_answers_what_the_standard_reads_do(
    tmp_path: Path,
) -> None:
    from veil.services.mutable.files import FIRST_READ, MutableFiles

    servers = [await start_live_server(tmp_path / f"s{i}") for i in range(3)]
    clients = [s.client() for s in servers]
    broker = StorageBroker(clients)
    try:
        mf = MutableFiles(broker, EncodingParameters(2, 3, 3), lease_secret=b"l" * 32)
        data = os.urandom(10_000)  # longer than the first read
        cap = await mf.create(data)
        si = cap.read_cap().storage_index
        for client in clients:
            version = await client.get_version()
            assert wb.offers_batch(version.application_version, wb.MUTABLE_READ_EXTENSION)
            prefixes = await client.mutable_read_batch(si, FIRST_READ)
            assert set(prefixes) == await client.mutable_list_shares(si)
            for shnum, prefix in prefixes.items():
                assert prefix == await client.mutable_read(si, shnum, 0, FIRST_READ)
            assert await client.mutable_read_batch(os.urandom(16), 100) == {}
        await broker.versions(clients)
        assert await mf.read(cap.read_cap()) == data  # through the extension
        wrong = type(clients[0])(
            replace(servers[0].nurl, swissnum="x" * 32),
            server_id=clients[0].server_id,
            lease_seed=clients[0].lease_seed,
            permutation_seed=clients[0].permutation_seed,
        )
        with pytest.raises(Unauthorized):
            await wrong.mutable_read_batch(si, 100)
        await wrong.close()
    finally:
        for c in clients:
            await c.close()
        for s in servers:
            await s.http.stop()
