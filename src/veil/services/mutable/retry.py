"""Read-modify-write of a mutable file under contention: the retry loop.

A mutable file has no lock; writers coordinate through the servers' test-and-
write alone (``veil.services.mutable.files``). One attempt reads a server map,
takes the best version *from that map*, applies the change and publishes it
with that same map's checkstrings as tests. An attempt gives up, writing
nothing, when

- another writer got to the first share (the *leader*) first, or any test
  fails later (``UncoordinatedWriteError``), or
- the map shows a version newer than the best readable one: another publish is
  under way (``InProgress``); the loop waits for it to finish. If the same
  newer shares are still there, unchanged, after ``PATIENCE`` seconds, their
  writer is taken to have died and the next attempt writes over them (if that
  writer was only slow, its remaining tests fail and it retries itself).

Attempts are spaced by full-jitter exponential backoff within ``BUDGET``
seconds; after that the caller gets one clear error and nothing it reported
as done is lost. This module is only the policy; it does no I/O itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from veil.errors import UncoordinatedWriteError

T = TypeVar("T")
Marker = frozenset[tuple[str, int, bytes]]

BUDGET = 120.0  # seconds of retrying before giving up
PATIENCE = 3.0  # seconds an unfinished newer version may stay unchanged before it is stale
FIRST_DELAY = 0.2
MAX_DELAY = 4.0


class InProgress(UncoordinatedWriteError):
    """The map holds shares newer than the best readable version: another
    publish is still under way. ``marker`` names those shares."""

    def __init__(self, marker: Marker) -> None:
        super().__init__("another writer is changing this mutable file")
        self.marker = marker


async def retrying(
    attempt: Callable[[Marker], Awaitable[T]],
    *,
    what: str = "mutable file",
    budget: float | None = None,
    patience: float | None = None,
) -> T:
    """Run ``attempt(stale)`` until it succeeds; ``stale`` names newer shares the
    attempt may write over (empty until a newer version has been seen unchanged
    for ``patience`` seconds)."""
    budget = BUDGET if budget is None else budget
    patience = PATIENCE if patience is None else patience
    start = time.monotonic()
    delay = FIRST_DELAY
    stale: Marker = frozenset()
    seen: tuple[Marker, float] | None = None  # a newer version and when it was first seen
    attempts = 0
    while True:
        attempts += 1
        try:
            return await attempt(stale)
        except InProgress as exc:
            now = time.monotonic()
            if seen is None or seen[0] != exc.marker:
                seen = (exc.marker, now)
            elif now - seen[1] >= patience:
                stale = exc.marker  # unchanged for a while: its writer is gone
                continue
        except UncoordinatedWriteError:
            seen = None
        if time.monotonic() - start > budget:
            raise UncoordinatedWriteError(
                f"other writers kept changing this {what} at the same time "
                f"({attempts} attempts in {time.monotonic() - start:.0f}s); "
                "this change may not have been made",
                hint="check it, and repeat the change if it is still needed",
            )
        await asyncio.sleep(random.uniform(0, delay))
        delay = min(MAX_DELAY, delay * 2)
