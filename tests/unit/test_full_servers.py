"""Disk full says the servers are full (issue 10, item 22), in-process."""

from __future__ import annotations

import os

import pytest

from veil.errors import UnhappinessError
from veil.formats.params import EncodingParameters
from veil.services.immutable.uploader import Uploader
from veil.testing.local_grid import local_grid


def _fill(server: object) -> None:
    core = server.service  # type: ignore[attr-defined]
    core.reserved_space = core.backend.free_space()


def _uploader(broker: object) -> Uploader:
    return Uploader(
        broker,  # type: ignore[arg-type]
        EncodingParameters(),
        lease_secret=b"l" * 32,
        convergence_secret=None,
    )


async def test_full_servers_are_named_full() -> None:
    broker, servers = local_grid(10)
    for s in servers:
        _fill(s)
    with pytest.raises(UnhappinessError) as err:
        await _uploader(broker).upload_bytes(os.urandom(10_000))
    text = str(err.value)
    assert text.startswith("the servers are full: 10 of 10 server(s) refused for lack of space")
    assert "only 0 server(s)" in text
    assert "start more storage servers" not in (err.value.hint or "")
    assert "free space" in (err.value.hint or "") and "has no room" in (err.value.hint or "")


async def test_servers_that_refuse_allocation_are_named_full() -> None:
    """The version (cached) promised room, the allocation then found none."""
    broker, servers = local_grid(10)
    await _uploader(broker).upload_bytes(os.urandom(10_000))  # versions are now cached
    for s in servers[:6]:
        _fill(s)
    with pytest.raises(UnhappinessError) as err:
        await _uploader(broker).upload_bytes(os.urandom(10_000))
    assert str(err.value).startswith("the servers are full: 6 of 10 server(s)")
    assert "refused to allocate" in (err.value.hint or "")


async def test_some_full_servers_do_not_stop_an_upload() -> None:
    broker, servers = local_grid(12)
    for s in servers[:2]:
        _fill(s)
    result = await _uploader(broker).upload_bytes(os.urandom(10_000))
    assert result.happiness == 10
    assert not {s.server_id for s in servers[:2]} & set(result.placements.values())
