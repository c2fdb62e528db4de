"""Waiting for several servers at once without waiting for a hung one.

An upload writes to every server in parallel and a download reads k shares
in parallel, so one stuck server (SIGSTOPped, behind a dead link, a full
socket buffer) would hold the whole operation until its request timeout.
``gather_patiently`` runs the calls together; once some have finished, a call
that makes no progress is given up: it is cancelled when nothing has finished
for ``patience`` seconds, or for as long as the finished ones took if that
is longer, so a slow link (where every call is slow alike) is not mistaken
for a hung server. The given-up call's result is a ``ServerUnavailable``
saying how long it was waited for; the caller drops that server and goes on
with the others, as Tahoe's downloader moves on from overdue servers.

Calls that all hang are left to their own timeouts (nothing to compare them to).
The broker holds the patience of a client: ``PATIENCE``, ``TOR_PATIENCE``
when servers are reached through Tor, ``I2P_PATIENCE`` through I2P.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from veil.services.server_failures import Stalled

T = TypeVar("T")
PATIENCE = 5.0  # seconds without progress before a straggler is given up
TOR_PATIENCE = 30.0  # circuits differ widely in how long they take to build
# I2P streams start slowly (a LeaseSet lookup, tunnel builds in rounds of ~10 s, an
# initial RTT of 1.5 s): one stream stalling past 30 s while others flow was seen
I2P_PATIENCE = 90.0


def abandon(task: asyncio.Future[T]) -> None:
    """Cancel ``task`` and take whatever it ends with, unseen: a call given up on
    may still fail rather than cancel (a connection closed under its read), and
    asyncio prints a traceback for an exception nobody took."""
    task.cancel()
    task.add_done_callback(_take_outcome)


def _take_outcome(task: asyncio.Future[T]) -> None:
    if not task.cancelled():
        task.exception()


async def gather_patiently(
    calls: Sequence[Awaitable[T]], *, patience: float = PATIENCE
) -> list[T | BaseException]:
    """The results (or exceptions) of ``calls`` run together, in their order.

    Stragglers are cancelled as the module says and get a ``Stalled`` error.
    ``asyncio.CancelledError`` of the caller propagates and cancels them all.
    """
    tasks = [asyncio.ensure_future(c) for c in calls]
    if not tasks:
        return []
    start = last = time.monotonic()
    pending = set(tasks)
    try:
        while pending:
            timeout = None
            if len(pending) < len(tasks):
                timeout = max(patience, last - start) - (time.monotonic() - last)
                if timeout <= 0:
                    break
            done, pending = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if done:
                last = time.monotonic()
    finally:
        for task in pending:
            abandon(task)
    if pending:
        await asyncio.wait(pending)  # let them finish cancelling (no stray tasks)
    waited = time.monotonic() - start
    out: list[T | BaseException] = []
    for task in tasks:
        if task in pending:
            out.append(Stalled(f"timed out after {waited:.0f} s while other servers answered"))
        elif task.cancelled():
            out.append(Stalled("cancelled"))
        else:
            exc = task.exception()
            out.append(exc if exc is not None else task.result())
    return out
