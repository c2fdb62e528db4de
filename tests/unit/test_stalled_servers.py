"""A stuck server does not stall a put or get while enough others answer, and
failures say why (issue 10, items 21 and 22), in-process with
``LocalStorageClient(hang=True)`` over real server cores.

The broker's ``patience`` (5 s by default) is 1 s here to keep the tests fast.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from veil.errors import NotEnoughSharesError, UnhappinessError
from veil.formats.params import EncodingParameters
from veil.services.broker import StorageBroker
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.services.patience import gather_patiently
from veil.services.server_failures import Stalled
from veil.testing.local_grid import local_grid

PARAMS = EncodingParameters(3, 7, 10, max_segment_size=65536)
BOUND = 10.0  # seconds any of these puts or gets may take
T = TypeVar("T")


def _uploader(broker: StorageBroker, progress: object = None) -> Uploader:
    return Uploader(
        broker,
        PARAMS,
        lease_secret=b"l" * 32,
        convergence_secret=None,
        progress=progress,  # type: ignore[arg-type]
    )


def _grid(count: int = 10) -> tuple[StorageBroker, list]:  # type: ignore[type-arg]
    broker, servers = local_grid(count)
    broker.patience = 1.0
    return broker, servers


async def _timed(aw: Awaitable[T]) -> tuple[T, float]:
    start = time.monotonic()
    result = await asyncio.wait_for(aw, BOUND)
    return result, time.monotonic() - start


async def test_gather_patiently_gives_up_a_straggler_only() -> None:
    async def quick(v: int) -> int:
        await asyncio.sleep(0.01)
        return v

    async def stuck() -> int:
        await asyncio.Event().wait()
        return -1

    start = time.monotonic()
    got = await gather_patiently([quick(1), stuck(), quick(2)], patience=0.3)
    assert got[0] == 1 and got[2] == 2
    assert isinstance(got[1], Stalled) and "timed out after" in str(got[1])
    assert time.monotonic() - start < 2

    async def slow(v: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return v

    # on a slow link every call is slow alike: a straggler gets as long again
    got = await gather_patiently([slow(1, 0.5), slow(2, 0.9)], patience=0.1)
    assert got == [1, 2]


async def test_calls_given_up_that_fail_instead_of_cancelling_print_nothing() -> None:
    """A read whose connection is closed under it raises instead of cancelling
    (aiohttp: ``RuntimeError('Connection closed.')``); asyncio prints a traceback
    for such a task unless someone takes its exception (seen on a user's stderr)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))

    async def closed_under_it() -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)
            raise RuntimeError("Connection closed.") from None
        return -1

    async def quick() -> int:
        await asyncio.sleep(0.01)
        return 1

    got = await gather_patiently([quick(), closed_under_it()], patience=0.05)
    assert got[0] == 1 and isinstance(got[1], Stalled)
    caller = asyncio.ensure_future(gather_patiently([closed_under_it(), closed_under_it()]))
    await asyncio.sleep(0.05)
    caller.cancel()  # the caller itself gives up: its calls are abandoned, not awaited
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(5):
        await asyncio.sleep(0)
    gc.collect()
    assert seen == []


async def test_put_skips_a_server_hung_from_the_start() -> None:
    broker, servers = _grid()
    servers[0].hang = True
    result, took = await _timed(_uploader(broker).upload_bytes(os.urandom(300_000)))
    assert result.happiness >= PARAMS.happy
    assert servers[0].server_id not in result.placements.values()
    assert took < 5


async def test_put_and_get_go_on_when_a_server_hangs_midway() -> None:
    broker, servers = _grid()
    data = os.urandom(1_000_000)  # 16 segments
    victim = servers[3]

    def hang_after_first_segment(_: int) -> None:
        victim.hang = True

    result, took = await _timed(_uploader(broker, hang_after_first_segment).upload_bytes(data))
    assert victim.server_id not in result.placements.values()
    assert took < 5

    # the get: every share's server answers the locate, then one stops mid-stream
    victim.hang = False
    dl = Downloader(broker)
    chunks = []
    start = time.monotonic()
    async for chunk in dl.stream(result.cap):
        chunks.append(chunk)
        if len(chunks) == 1:  # the holder of the lowest placed share (in use) stops
            # (share 0 itself may have been on the victim and dropped by the put)
            holder = result.placements[min(result.placements)]
            next(s for s in servers if s.server_id == holder).hang = True
    assert b"".join(chunks) == data
    assert time.monotonic() - start < BOUND
    assert any("timed out after" in f for f in dl.last_stats.failed_servers)


async def test_failure_hint_names_the_reason() -> None:
    broker, servers = _grid()
    for s in servers[:4]:  # 6 answer: happiness 7 cannot be reached
        s.hang = True
    start = time.monotonic()
    with pytest.raises(UnhappinessError) as err:
        await asyncio.wait_for(_uploader(broker).upload_bytes(os.urandom(10_000)), BOUND)
    assert time.monotonic() - start < 5
    assert "4 of 10 server(s) stopped answering" in str(err.value)
    hint = err.value.hint or ""
    assert "v0-test0" in hint and "timed out after 1 s" in hint
    assert ": ;" not in hint


async def test_get_failure_names_each_servers_reason() -> None:
    broker, servers = _grid()
    cap = (await _uploader(broker).upload_bytes(os.urandom(10_000))).cap
    for s in servers[:9]:  # one server (one share) is left: 3 are needed
        s.fail = True
    with pytest.raises(NotEnoughSharesError) as err:
        await asyncio.wait_for(Downloader(broker).download_bytes(cap), BOUND)
    hint = err.value.hint or ""
    assert hint.startswith("unreachable: v0-test0") and "is unreachable" in hint
    assert ": ;" not in hint
