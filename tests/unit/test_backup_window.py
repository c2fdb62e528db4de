"""``in_window``, which walks a directory's subdirectories a few at a time: at
most ``width`` jobs run, a slow one does not keep the next from starting,
results come back in order, and a failure cancels the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from veil.services.backup.backup_run import in_window


def test_at_most_width_at_once_and_a_slow_job_does_not_hold_the_others() -> None:
    async def go() -> None:
        running: list[int] = []
        most = 0
        slow_done = asyncio.Event()
        finished_before_slow: list[int] = []

        def job(i: int) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                nonlocal most
                running.append(i)
                most = max(most, len(running))
                if i == 0:
                    await asyncio.sleep(0.2)  # the slow first directory
                    slow_done.set()
                else:
                    await asyncio.sleep(0.001)
                    if not slow_done.is_set():
                        finished_before_slow.append(i)
                running.remove(i)
                return i * 10

            return run

        results = await in_window([job(i) for i in range(20)], width=3)
        assert results == [i * 10 for i in range(20)]
        assert most == 3
        assert finished_before_slow == list(range(1, 20))  # all went on past the slow one

    asyncio.run(go())


def test_a_failure_cancels_the_others_and_is_raised() -> None:
    async def go() -> None:
        cancelled: list[int] = []

        def job(i: int) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                if i == 2:
                    raise ValueError("no such directory")
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    cancelled.append(i)
                    raise
                return i

            return run

        with pytest.raises(ValueError, match="no such directory"):
            await asyncio.wait_for(in_window([job(i) for i in range(6)], width=4), 5)
        assert sorted(cancelled) == [0, 1, 3]  # the ones started; 4 and 5 never were

    asyncio.run(go())
