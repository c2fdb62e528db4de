"""The broker's version cache: one request per server however many ask at once."""

from __future__ import annotations

import asyncio

from veil.errors import ServerUnavailable
from veil.testing.local_grid import local_grid


async def test_fifty_callers_at_once_ask_each_server_once() -> None:
    broker, clients = local_grid(5)
    answers = await asyncio.gather(*(broker.versions(broker.servers) for _ in range(50)))
    assert [c.calls for c in clients] == [1] * 5
    assert all(set(a) == {c.server_id for c in clients} for a in answers)
    await broker.versions(broker.servers)  # cached now: no request at all
    assert [c.calls for c in clients] == [1] * 5


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    broker, clients = local_grid(1)
    clients[0].hang = True
    first = asyncio.ensure_future(broker.version_of(clients[0]))
    second = asyncio.ensure_future(broker.version_of(clients[0]))
    await asyncio.sleep(0.01)
    first.cancel()
    clients[0].hang = False  # the one request in flight still hangs; a new one would not
    await asyncio.sleep(0.01)
    assert not second.done() and clients[0].calls == 1
    await broker.close()  # closing ends the request in flight
    await asyncio.gather(first, second, return_exceptions=True)
    assert second.cancelled()


async def test_a_failure_reaches_every_caller_and_the_next_call_asks_again() -> None:
    broker, clients = local_grid(1)
    clients[0].fail = True
    answers = await asyncio.gather(*(broker.versions(broker.servers) for _ in range(3)))
    assert all(isinstance(a[clients[0].server_id], ServerUnavailable) for a in answers)
    assert clients[0].calls == 1
    clients[0].fail = False
    version = await broker.version_of(clients[0])
    assert version.application_version == b"veil/test" and clients[0].calls == 2
