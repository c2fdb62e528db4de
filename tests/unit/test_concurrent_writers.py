"""Concurrent writers of one mutable directory on an in-process grid: no change
that returned is ever lost, and a share rewritten between the reads of a
server map is never glued from two versions.

``Jittery`` is a ``LocalStorageClient`` (real server cores) that waits a random
moment before each call, so concurrent publishes interleave at every server
in a different order, as they do over a network."""

from __future__ import annotations

import asyncio
import random

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from veil.adapters.storage.in_process_client import LocalStorageClient
from veil.formats import mutable_caps as mc
from veil.formats.dirnode import Entry
from veil.formats.params import EncodingParameters
from veil.services.broker import StorageBroker
from veil.services.directories import Directories, entry_for
from veil.services.immutable.downloader import Downloader
from veil.services.mutable import retry as mutable_retry
from veil.services.mutable.files import FIRST_READ, MutableFiles
from veil.testing.local_grid import local_grid, same_servers_as

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
LIT = "URI:LIT:nbswy3dp"


class Jittery(LocalStorageClient):
    async def _gate(self) -> None:
        await asyncio.sleep(random.random() * 0.002)
        await super()._gate()


def grid(count: int, k: int, n: int, jitter: bool = True) -> tuple[MutableFiles, list]:  # type: ignore[type-arg]
    broker, clients = local_grid(count)
    if jitter:
        for c in clients:
            c.__class__ = Jittery
    params = EncodingParameters(k, min(n, k + 1), n)
    mf = MutableFiles(broker, params, lease_secret=b"s" * 32, keygen=lambda: KEY, timeout=5)
    return mf, clients


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mutable_retry, "FIRST_DELAY", 0.02)
    monkeypatch.setattr(mutable_retry, "MAX_DELAY", 0.3)


@pytest.mark.parametrize(("servers", "k", "n", "mdmf"), [(10, 3, 10, False), (5, 2, 5, True)])
async def test_twenty_concurrent_links_are_all_kept(
    servers: int, k: int, n: int, mdmf: bool
) -> None:
    random.seed(servers)
    mf, _ = grid(servers, k, n)
    dirs = Directories(mf, Downloader(mf.broker))
    root = await dirs.create({"old": entry_for(LIT)}, mdmf=mdmf)

    async def link(i: int) -> None:
        await asyncio.sleep(random.random() * 0.01)

        def change(children: dict[str, Entry]) -> dict[str, Entry]:
            children[f"f{i}"] = entry_for(LIT)
            return children

        await dirs.modify(root, change)

    results = await asyncio.gather(*(link(i) for i in range(20)), return_exceptions=True)
    listed = set(await dirs.children(root))
    done = {f"f{i}" for i, r in enumerate(results) if r is None}
    assert done | {"old"} <= listed  # nothing that returned is lost
    assert results == [None] * 20  # and none gave up under this contention


class Tearing(LocalStorageClient):
    """After the first read of a share's head, waits for ``resume``: another
    writer's publish falls between a reader's two reads. Counts corruption
    reports."""

    between = asyncio.Event()
    resume = asyncio.Event()
    reports = 0

    async def mutable_read(self, storage_index: bytes, share_number: int, o: int, n: int) -> bytes:
        data = await super().mutable_read(storage_index, share_number, o, n)
        if o == 0 and n == FIRST_READ and not Tearing.resume.is_set():
            Tearing.between.set()
            await Tearing.resume.wait()
        return data

    async def mutable_advise_corrupt(self, storage_index: bytes, shnum: int, why: str) -> None:
        Tearing.reports += 1
        await super().mutable_advise_corrupt(storage_index, shnum, why)


async def test_a_share_rewritten_between_two_reads_is_not_glued() -> None:
    """The tail of a share longer than the first read (its encrypted signing key
    lies there) once came from the next version: "the encrypted signing key in
    the shares does not match the cap" (or a share wrongly reported corrupt)."""
    Tearing.between, Tearing.resume, Tearing.reports = asyncio.Event(), asyncio.Event(), 0
    mf, clients = grid(5, 3, 5, jitter=False)
    cap = await mf.create(bytes(7500))  # shares of about 4500 bytes
    tearing = same_servers_as(Tearing, clients)
    reader = MutableFiles(StorageBroker(tearing), mf.params, lease_secret=b"r" * 32)

    async def other_writer() -> None:
        await Tearing.between.wait()
        await asyncio.sleep(0.01)  # every reader has its heads now
        await mf.overwrite(cap, b"x" * 9000)  # longer: the key moves further out
        Tearing.resume.set()

    writer = asyncio.ensure_future(other_writer())
    assert await reader.overwrite(cap, b"mine") == 3
    await writer
    assert await mf.read(cap) == b"mine"
    assert Tearing.reports == 0


async def test_a_dead_writers_unfinished_version_is_overwritten_after_patience(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mutable_retry, "PATIENCE", 0.2)
    mf, clients = grid(5, 2, 5, jitter=False)
    dirs = Directories(mf, Downloader(mf.broker))
    root = await dirs.create({"kept": entry_for(LIT)})
    file = root.file
    assert isinstance(file, mc.SSKWriteCap)
    clients[1].hang = clients[2].hang = clients[3].hang = clients[4].hang = True
    dead = asyncio.ensure_future(mf.overwrite(file, b"never finished"))
    while clients[0].writes == 0:  # the leader is written, then the writer dies
        await asyncio.sleep(0.01)
    dead.cancel()
    for c in clients:
        c.hang = False
    entries = await dirs.modify(root, lambda ch: {**ch, "new": entry_for(LIT)})
    assert set(entries) == {"kept", "new"}
    assert set(await dirs.children(root)) == {"kept", "new"}
