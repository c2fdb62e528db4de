"""Uploader and downloader against real server cores in-process (no sockets)."""

from __future__ import annotations

import asyncio
import os

import pytest

from veil.errors import NotEnoughSharesError, UnhappinessError
from veil.formats.caps import CHKReadCap, LiteralCap
from veil.formats.params import EncodingParameters
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.testing.local_grid import local_grid

LEASE = b"l" * 32
CONV = b"\x00" * 32


def uploader(
    broker, params: EncodingParameters | None = None, conv: bytes | None = CONV
) -> Uploader:  # type: ignore[no-untyped-def]
    return Uploader(
        broker, params or EncodingParameters(), lease_secret=LEASE, convergence_secret=conv
    )


@pytest.mark.parametrize("size", [0, 55, 56, 1000, 4096, 1048577, 3 * 1048576 + 5])
async def test_round_trip_sizes(size: int) -> None:
    broker, _ = local_grid(10)
    data = os.urandom(size)
    result = await uploader(broker).upload_bytes(data)
    assert isinstance(result.cap, LiteralCap if size <= 55 else CHKReadCap)
    assert await Downloader(broker).download_bytes(result.cap) == data
    if size > 55:
        assert result.happiness == 10
        assert sorted(result.placements) == list(range(10))


async def test_same_cap_as_tahoe_for_case_a() -> None:
    broker, _ = local_grid(10)
    result = await uploader(broker).upload_bytes(b"a" * 56)
    assert result.cap.to_string() == (
        "URI:CHK:3ider2oyrjylu3zxnxcaf3ufny:"
        "cz26at4njp7fajpj72krpfml4hewlqyeucaxp32t4c4eyjdfbp3q:3:10:56"
    )


async def test_byte_ranges_fetch_only_what_is_needed() -> None:
    broker, _ = local_grid(10)
    params = EncodingParameters(max_segment_size=4096)
    data = os.urandom(50_000)
    cap = (await uploader(broker, params).upload_bytes(data)).cap
    dl = Downloader(broker)
    for off, length in [(0, 1), (4095, 2), (10_000, 20_000), (49_999, 10), (60_000, 5)]:
        got = b"".join([c async for c in dl.stream(cap, off, length)])
        assert got == data[off : off + length]


async def test_download_survives_n_minus_k_dead_servers() -> None:
    broker, servers = local_grid(10)
    data = os.urandom(300_000)
    cap = (await uploader(broker).upload_bytes(data)).cap
    for s in servers[:7]:
        s.fail = True
    assert await Downloader(broker).download_bytes(cap) == data
    servers[7].fail = True
    with pytest.raises(NotEnoughSharesError):
        await Downloader(broker).download_bytes(cap)


async def test_corrupt_share_is_detected_reported_and_replaced() -> None:
    broker, servers = local_grid(10)
    params = EncodingParameters(max_segment_size=8192)
    data = os.urandom(40_000)
    cap = (await uploader(broker, params).upload_bytes(data)).cap
    assert isinstance(cap, CHKReadCap)
    si = cap.storage_index
    for s in servers:  # corrupt every primary share in its data area
        backend = s.service.backend  # type: ignore[attr-defined]
        for sh in backend.list_shares(si):
            if sh < 3:
                raw, leases = backend.shares[(si, sh)]
                raw = bytearray(raw)
                raw[100] ^= 0xFF
                backend.shares[(si, sh)] = (bytes(raw), leases)
    dl = Downloader(broker)
    assert await dl.download_bytes(cap) == data
    assert len(dl.last_stats.corrupt_shares) == 3
    reports = [a for s in servers for a in s.service.backend.advisories]  # type: ignore[attr-defined]
    assert len(reports) == 3


async def test_hanging_server_does_not_block_download() -> None:
    broker, servers = local_grid(10)
    data = os.urandom(100_000)
    cap = (await uploader(broker).upload_bytes(data)).cap
    servers[0].hang = True
    got = await asyncio.wait_for(Downloader(broker).download_bytes(cap), 10)
    assert got == data


async def test_upload_fails_clearly_without_enough_servers() -> None:
    broker, servers = local_grid(5)
    with pytest.raises(UnhappinessError, match="only 5 server"):
        await uploader(broker).upload_bytes(os.urandom(1000))
    for s in servers:  # nothing was left behind
        assert not s.service._uploads  # type: ignore[attr-defined]


async def test_server_dying_mid_upload_is_tolerated_or_fails_clearly() -> None:
    broker, servers = local_grid(10)
    params = EncodingParameters(3, 7, 10, max_segment_size=65536)
    data = os.urandom(1_000_000)
    # Three servers die at their first write: happiness 7 is still reachable.
    for v in servers[:3]:
        v.die_after_writes = 0
    result = await uploader(broker, params).upload_bytes(data)
    assert result.happiness == 7
    for v in servers[:3]:
        v.fail = False
    assert await Downloader(broker).download_bytes(result.cap) == data

    # Two of eight die: 6 < happy 7, so the upload fails and aborts what it began.
    broker2, servers2 = local_grid(8)
    for v in servers2[:2]:
        v.die_after_writes = 0
    with pytest.raises(UnhappinessError):
        await uploader(broker2, params).upload_bytes(os.urandom(500_000))
    for s in servers2[2:]:
        assert not s.service._uploads  # type: ignore[attr-defined]


async def test_second_upload_finds_existing_shares() -> None:
    broker, _ = local_grid(10)
    data = os.urandom(10_000)
    first = await uploader(broker).upload_bytes(data)
    second = await uploader(broker).upload_bytes(data)
    assert first.cap == second.cap
    assert second.pushed_bytes == 0
