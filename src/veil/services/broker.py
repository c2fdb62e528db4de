"""The set of storage servers a client knows, in permuted-ring order.

The broker holds one ``StorageClient`` per server and remembers each one's
last version answer, so an upload does not ask every server for its version
every time (Tahoe polls every server every second; veil asks only when it
needs to and the cached answer is older than ``version_ttl``). Callers that
need a version at the same time share one request: a backup that starts
fifty uploads at once asks each server once, on one connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from veil.errors import VeilError
from veil.formats.hashes import permute_server_hash
from veil.services.interfaces import StorageClient, VersionInfo
from veil.services.patience import PATIENCE, gather_patiently


@dataclass
class _Known:
    version: VersionInfo | None = None
    fetched_at: float = 0.0


class StorageBroker:
    """The servers a client may use. Servers are identified by ``server_id``."""

    def __init__(
        self,
        servers: Sequence[StorageClient] = (),
        *,
        version_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        patience: float = PATIENCE,
    ) -> None:
        self._servers: dict[str, StorageClient] = {}
        self._known: dict[str, _Known] = {}
        self._asking: dict[str, asyncio.Future[VersionInfo]] = {}
        self._ttl = version_ttl
        self._clock = clock
        self.patience = patience  # seconds a stuck server is waited for (see patience)
        for server in servers:
            self.add(server)

    def add(self, server: StorageClient) -> None:
        self._servers[server.server_id] = server
        self._known.setdefault(server.server_id, _Known())

    @property
    def servers(self) -> list[StorageClient]:
        return list(self._servers.values())

    def permuted(self, storage_index: bytes) -> list[StorageClient]:
        """All servers sorted by ``SHA1(storage_index || permutation_seed)``."""
        return sorted(
            self._servers.values(),
            key=lambda s: permute_server_hash(storage_index, s.permutation_seed),
        )

    def forget_version(self, server_id: str) -> None:
        """Drop a cached version, e.g. after the server failed a request."""
        if server_id in self._known:
            self._known[server_id] = _Known()

    def known_version(self, server: StorageClient) -> VersionInfo | None:
        """The version last fetched from ``server``, however old, without asking:
        enough to choose an extension, since a server that no longer offers it
        answers 404 and the caller falls back to the standard calls."""
        known = self._known.get(server.server_id)
        return known.version if known is not None else None

    def _cached(
        self, servers: Sequence[StorageClient]
    ) -> dict[str, VersionInfo | VeilError] | None:
        now = self._clock()
        out: dict[str, VersionInfo | VeilError] = {}
        for server in servers:
            known = self._known.get(server.server_id)
            if known is None or known.version is None or now - known.fetched_at >= self._ttl:
                return None
            out[server.server_id] = known.version
        return out

    async def version_of(self, server: StorageClient) -> VersionInfo:
        """The server's version, cached for ``version_ttl`` seconds."""
        known = self._known.setdefault(server.server_id, _Known())
        now = self._clock()
        if known.version is not None and now - known.fetched_at < self._ttl:
            return known.version
        asking = self._asking.get(server.server_id)
        if asking is None:
            asking = asyncio.ensure_future(self._fetch(server, now))
            self._asking[server.server_id] = asking
            asking.add_done_callback(partial(self._asked, server.server_id))
        return await asyncio.shield(asking)  # one caller cancelled does not cancel the rest

    async def _fetch(self, server: StorageClient, now: float) -> VersionInfo:
        version = await server.get_version()
        self._known[server.server_id] = _Known(version, now)
        return version

    def _asked(self, server_id: str, asking: asyncio.Future[VersionInfo]) -> None:
        if self._asking.get(server_id) is asking:
            del self._asking[server_id]
        if not asking.cancelled():
            asking.exception()  # retrieved here too: every caller may have gone

    async def versions(
        self, servers: Sequence[StorageClient]
    ) -> dict[str, VersionInfo | VeilError]:
        """Versions of several servers at once; failures are returned, not raised.

        A server that does not answer while the others do is given up after a
        few seconds (``gather_patiently``), with a ``Stalled`` failure.
        """
        cached = self._cached(servers)
        if cached is not None:  # the usual case: no task, no waiting
            return cached

        answers = await gather_patiently(
            [self.version_of(s) for s in servers], patience=self.patience
        )
        out: dict[str, VersionInfo | VeilError] = {}
        for server, answer in zip(servers, answers, strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, VeilError):
                raise answer
            out[server.server_id] = answer
        return out

    async def close(self) -> None:
        asking = list(self._asking.values())
        for task in asking:
            task.cancel()
        # their requests let go of their connections before the sessions close (a
        # connection left closing when the loop ends is never closed at all)
        await asyncio.gather(*asking, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in self._servers.values()))
