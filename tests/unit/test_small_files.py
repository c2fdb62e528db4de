"""Small files through veil's batch extension, in-process: same caps and shares as
the standard calls, far fewer requests, and the standard guarantees under faults."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from veil.errors import NotEnoughSharesError, UnhappinessError
from veil.formats import base32
from veil.formats.caps import CHKReadCap
from veil.formats.params import EncodingParameters
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.small_files import read_small, upload_small
from veil.services.immutable.uploader import Uploader, convergent_key
from veil.testing.local_grid import local_grid

LEASE = b"l" * 32
CONV = b"\x07" * 32
P = EncodingParameters()


def readkey_of(data: bytes, params: EncodingParameters = P) -> bytes:
    import io

    return convergent_key(io.BytesIO(data), len(data), params, CONV)


async def test_same_cap_and_share_bytes_as_the_standard_upload() -> None:
    data = os.urandom(4096)
    batch_broker, batch_servers = local_grid(10, batch=True)
    std_broker, std_servers = local_grid(10)
    small = await upload_small(batch_broker, P, readkey_of(data), data, lease_secret=LEASE)
    std = await Uploader(std_broker, P, lease_secret=LEASE, convergence_secret=CONV).upload_bytes(
        data
    )
    assert small is not None and small.cap == std.cap and small.happiness == 10
    si = small.cap.storage_index

    def stored(servers: list) -> dict[int, bytes]:  # type: ignore[type-arg]
        out = {}
        for s in servers:
            for sh in s.service.list_shares(si):
                out[sh] = s.service.read_share_chunk(si, sh, 0, 10**6)
        return out

    assert stored(batch_servers) == stored(std_servers)
    assert await read_small(batch_broker, small.cap) == data
    # and the standard downloader reads what the batch wrote
    assert await Downloader(batch_broker).download_bytes(small.cap) == data


async def test_one_request_per_server_and_coalescing_across_files() -> None:
    broker, servers = local_grid(10, batch=True)
    files = [os.urandom(4096) for _ in range(32)]
    await broker.versions(broker.servers)  # versions are cached per command
    before = sum(s.calls for s in servers)
    results = await asyncio.gather(
        *(upload_small(broker, P, readkey_of(d), d, lease_secret=LEASE) for d in files)
    )
    uploads = sum(s.calls for s in servers) - before
    assert all(r is not None and r.happiness == 10 for r in results)
    assert uploads <= 10 * 3, uploads  # standard calls: 32 files x 20 requests
    before = sum(s.calls for s in servers)
    got = await asyncio.gather(*(read_small(broker, r.cap) for r in results if r))
    assert got == files
    assert sum(s.calls for s in servers) - before <= 10 * 3


async def test_a_grid_with_a_server_without_the_extension_uses_the_standard_calls() -> None:
    broker, _ = local_grid(10, batch=True)
    plain, _ = local_grid(1)
    broker.add(plain.servers[0])
    data = os.urandom(2000)
    assert await upload_small(broker, P, readkey_of(data), data, lease_secret=LEASE) is None
    big = os.urandom(600_000)  # shares too large for a batch
    only_batch, _ = local_grid(10, batch=True)
    assert await upload_small(only_batch, P, readkey_of(big), big, lease_secret=LEASE) is None


async def test_servers_dying_mid_batch_are_replaced_and_the_file_survives() -> None:
    broker, servers = local_grid(12, batch=True)
    for s in servers[:3]:
        s.die_after_writes = 0  # they store the shares, then never answer
    data = os.urandom(5000)
    result = await upload_small(broker, P, readkey_of(data), data, lease_secret=LEASE)
    assert result is not None and result.happiness >= P.happy
    assert not {s.server_id for s in servers[:3]} & set(result.placements.values())
    assert await read_small(broker, result.cap) == data


async def test_too_few_servers_is_unhappiness_with_reasons() -> None:
    broker, servers = local_grid(10, batch=True)
    for s in servers[:5]:
        s.fail = True
    data = os.urandom(3000)
    with pytest.raises(UnhappinessError) as err:
        await upload_small(broker, P, readkey_of(data), data, lease_secret=LEASE)
    assert "unreachable" in (err.value.hint or "") + str(err.value)


async def test_corrupt_and_missing_shares_are_skipped_and_reported(tmp_path: Path) -> None:
    broker, servers = local_grid(10, tmp_path, batch=True)
    data = os.urandom(4000)
    result = await upload_small(broker, P, readkey_of(data), data, lease_secret=LEASE)
    assert result is not None and isinstance(result.cap, CHKReadCap)
    si = result.cap.storage_index
    by_id = {s.server_id: s for s in servers}
    holders = [by_id[sid] for sid in result.placements.values()]
    corrupted = []
    for path in sorted(tmp_path.glob(f"s*/shares/*/{base32.b2a(si)}/*"))[:4]:
        raw = bytearray(path.read_bytes())
        raw[12 + 100] ^= 1  # a byte in the blocks, after the container header
        path.write_bytes(bytes(raw))
        corrupted.append(path.parts[-5])
    by_dir = {f"s{i}": s for i, s in enumerate(servers)}
    good = [s for s in holders if s not in {by_dir[d] for d in corrupted}]
    for s in good[:3]:
        s.fail = True
    assert await read_small(broker, result.cap) == data
    advisories = list(tmp_path.glob("s*/corruption-advisories/*"))
    assert advisories, "corrupt shares are reported to their servers"
    for s in good[3:]:
        s.fail = True
    with pytest.raises(NotEnoughSharesError):
        await read_small(broker, result.cap)


async def test_the_coalescer_keeps_at_most_two_requests_in_flight_and_batches_the_rest() -> None:
    from veil.services.immutable.small_files import IN_FLIGHT, _Coalescer

    sent: list[list[int]] = []
    release = asyncio.Event()
    in_flight = peak = 0

    async def send(items: list[int]) -> list[int]:
        nonlocal in_flight, peak
        sent.append(items)
        in_flight += 1
        peak = max(peak, in_flight)
        await release.wait()
        in_flight -= 1
        return [i * 10 for i in items]

    c: _Coalescer[int, int] = _Coalescer(send, lambda _: 1)
    first = [asyncio.ensure_future(c.call(i)) for i in range(3)]  # one loop turn: one batch
    await asyncio.sleep(0.01)
    second = [asyncio.ensure_future(c.call(i)) for i in range(3, 6)]  # while it is in flight
    await asyncio.sleep(0.01)
    third = [asyncio.ensure_future(c.call(i)) for i in range(6, 9)]  # both busy: they wait
    await asyncio.sleep(0.01)
    assert sent == [[0, 1, 2], [3, 4, 5]] and IN_FLIGHT == 2
    release.set()
    assert await asyncio.gather(*first, *second, *third) == [i * 10 for i in range(9)]
    assert sent[2] == [6, 7, 8] and len(sent) == 3 and peak == 2
