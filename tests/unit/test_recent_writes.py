"""A client's own last SDMF write as the server map of its next change of the
same file: one round fewer, and never a lost update when somebody else wrote
in between (the stale map's tests fail, nothing is written, the retry asks)."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import rsa

from veil.adapters.storage.in_process_client import LocalStorageClient
from veil.formats.params import EncodingParameters
from veil.services.broker import StorageBroker
from veil.services.mutable.files import MutableFiles
from veil.services.mutable.server_map import RecentWrites, ServerMap
from veil.testing.local_grid import local_grid

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def files(broker: StorageBroker, recent: RecentWrites | None) -> MutableFiles:
    return MutableFiles(
        broker,
        EncodingParameters(2, 3, 4),
        lease_secret=b"s" * 32,
        keygen=lambda: _KEY,
        recent=recent,
    )


def reads(clients: list[LocalStorageClient]) -> int:
    """Calls that were not writes: the server map's listings and reads."""
    return sum(c.calls - c.writes for c in clients)


def test_a_kept_map_is_taken_once_while_fresh_and_the_oldest_go_first() -> None:
    now = [0.0]
    recent = RecentWrites(clock=lambda: now[0])
    a, b = os.urandom(16), os.urandom(16)
    recent.keep(a, ServerMap())
    assert recent.take(a) is not None
    assert recent.take(a) is None  # taken once: a retry asks the servers
    recent.keep(a, ServerMap())
    now[0] += RecentWrites.FRESH + 1
    assert recent.take(a) is None
    for _ in range(RecentWrites.LIMIT + 5):
        recent.keep(os.urandom(16), ServerMap())
    recent.keep(b, ServerMap())
    assert len(recent) == RecentWrites.LIMIT and recent.take(b) is not None


async def test_the_next_change_after_an_own_write_asks_no_server_for_a_map() -> None:
    broker, clients = local_grid(4)
    mine = files(broker, RecentWrites())
    cap = await mine.create(b"one")
    before = reads(clients)
    await mine.modify(cap, lambda old: old + b" two")
    assert reads(clients) == before  # started from what it had written
    before = reads(clients)
    await mine.modify(cap, lambda old: old + b" three")
    assert reads(clients) == before
    assert await mine.read(cap.read_cap()) == b"one two three"
    without = files(broker, None)  # the same change with no memory asks every server
    before = reads(clients)
    await without.modify(cap, lambda old: old + b" four")
    assert reads(clients) - before >= len(clients)


async def test_a_change_made_by_another_writer_in_between_is_never_lost() -> None:
    broker, _ = local_grid(4)
    mine, theirs = files(broker, RecentWrites()), files(broker, None)
    cap = await mine.create(b"base")
    await mine.modify(cap, lambda old: old + b"+mine1")  # its map is now kept
    await theirs.modify(cap, lambda old: old + b"+theirs")
    await mine.modify(cap, lambda old: old + b"+mine2")  # the kept map is stale
    assert await theirs.read(cap.read_cap()) == b"base+mine1+theirs+mine2"


async def test_a_write_that_missed_a_server_keeps_no_map() -> None:
    broker, clients = local_grid(4)
    recent = RecentWrites()
    mine = files(broker, recent)
    cap = await mine.create(b"base")
    assert len(recent) == 1
    clients[0].fail = True
    await mine.modify(cap, lambda old: old + b"+x")  # written to 3 of 4: enough, not all
    assert len(recent) == 0
    clients[0].fail = False
    await mine.modify(cap, lambda old: old + b"+y")  # asks the servers again
    assert await mine.read(cap.read_cap()) == b"base+x+y"
