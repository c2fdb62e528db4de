"""A backup's history: the links reuse the server maps read when it was opened,
and a map gone stale (another writer in between) costs a retry, never a change."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from veil.adapters.storage.in_process_client import LocalStorageClient
from veil.formats.params import EncodingParameters
from veil.services.backup import snapshots
from veil.services.backup.snapshots import (
    ARCHIVES,
    LATEST,
    link_snapshot,
    linking,
    list_snapshots,
    open_history,
)
from veil.services.broker import StorageBroker
from veil.services.directories import Directories, entry_for
from veil.services.immutable.downloader import Downloader
from veil.services.mutable.files import MutableFiles
from veil.testing.local_grid import local_grid, same_servers_as

PARAMS = EncodingParameters(2, 3, 4)


class Listing(LocalStorageClient):
    """Counts the share listings a server map starts with."""

    lists = 0

    async def mutable_list_shares(self, storage_index: bytes) -> frozenset[int]:
        Listing.lists += 1
        return await super().mutable_list_shares(storage_index)


def directories() -> Directories:
    _, plain = local_grid(4)
    servers = same_servers_as(Listing, plain)
    broker = StorageBroker(servers)
    return Directories(MutableFiles(broker, PARAMS, lease_secret=b"s" * 32), Downloader(broker))


async def test_the_links_ask_no_server_map_of_their_own() -> None:
    dirs = directories()
    root = await dirs.create()
    await open_history(dirs, root, ["b"])  # makes b and b/Archives
    history = await open_history(dirs, root, ["b"])
    assert history.maps[0] is not None and history.maps[1] is not None
    snap = await dirs.create()
    Listing.lists = 0
    await link_snapshot(dirs, history, "2026-12-03_09:00:00Z", snap, {})
    assert Listing.lists == 0
    # without the maps each link first lists every server's shares
    again = replace(history, maps=(None, None))
    await link_snapshot(dirs, again, "2026-12-03_09:00:01Z", snap, {})
    assert Listing.lists == 2 * 4
    names = [s.name for s in await list_snapshots(dirs, history.base)]
    assert names == ["2026-12-03_09:00:00Z", "2026-12-03_09:00:01Z"]


async def test_a_stale_map_loses_nothing_another_writer_linked() -> None:
    dirs = directories()
    root = await dirs.create()
    history = await open_history(dirs, root, ["b"])
    history = await open_history(dirs, root, ["b"])
    other = await dirs.create()
    await dirs.modify(history.base, linking("notes", entry_for(other.to_string())))
    await dirs.modify(history.archives, linking("x", entry_for(other.to_string())))
    snap = await dirs.create()
    await link_snapshot(dirs, history, "2026-12-03_09:00:00Z", snap, {})
    base = await dirs.children(history.base)
    assert {"notes", ARCHIVES, LATEST} <= set(base)
    assert {"x", "2026-12-03_09:00:00Z"} <= set(await dirs.children(history.archives))


class Overlapping(LocalStorageClient):
    """Records how many share listings are in flight at once (each takes a moment)."""

    now = 0
    most = 0

    async def mutable_list_shares(self, storage_index: bytes) -> frozenset[int]:
        Overlapping.now += 1
        Overlapping.most = max(Overlapping.most, Overlapping.now)
        try:
            await asyncio.sleep(0.005)
            return await super().mutable_list_shares(storage_index)
        finally:
            Overlapping.now -= 1


def overlapping_directories() -> Directories:
    _, plain = local_grid(4)
    broker = StorageBroker(same_servers_as(Overlapping, plain))
    return Directories(MutableFiles(broker, PARAMS, lease_secret=b"s" * 32), Downloader(broker))


async def test_a_history_opened_before_is_read_in_one_round() -> None:
    dirs = overlapping_directories()
    root = await dirs.create()
    first = await open_history(dirs, root, ["b"])  # level by level, then remembered
    Overlapping.most = 0
    forgotten = dict(snapshots._found)
    snapshots._found.clear()
    await open_history(dirs, root, ["b"])
    assert Overlapping.most == 4  # one directory's listing at a time, on 4 servers
    snapshots._found.update(forgotten)
    Overlapping.most = 0
    again = await open_history(dirs, root, ["b"])
    assert Overlapping.most == 3 * 4  # root, b and b/Archives at once
    assert (again.base.to_string(), again.archives.to_string()) == (
        first.base.to_string(),
        first.archives.to_string(),
    )
    assert again.maps[0] is not None and again.maps[1] is not None


async def test_a_moved_or_unreadable_remembered_history_is_not_used() -> None:
    dirs = directories()
    root = await dirs.create()
    old = await open_history(dirs, root, ["b"])
    moved = await dirs.create()  # somebody links another directory as b
    await dirs.modify(root, linking("b", entry_for(moved.to_string())))
    now = await open_history(dirs, root, ["b"])
    assert now.base.to_string() == moved.to_string() != old.base.to_string()
    assert ARCHIVES in await dirs.children(moved)  # made there, as on a first backup
    # remembered directories the grid does not hold: read level by level instead
    elsewhere = await directories().create()
    key = (root.to_string(), ("b",))
    snapshots._found[key] = (elsewhere, elsewhere)
    read = await open_history(dirs, root, ["b"])
    assert (read.base.to_string(), read.archives.to_string()) == (
        now.base.to_string(),
        now.archives.to_string(),
    )
    assert snapshots._found[key][0].to_string() == now.base.to_string()
