"""The UI's one client for the node's lifetime (pages, uploads, backups, repairs).

Opening a client reads the node's settings, asks the introducers and makes
a connection to each server: over Tor that takes seconds, too slow for every
page. ``SharedClient`` opens ``open_client`` at the first use and keeps it
until the gateway stops (as ``wapi_session.GatewaySession`` does for the web
API); a failed opening is not kept, so the next page tries again.
``client_of(request)`` is what the routes use; a job keeps ``shared_of(request)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

from aiohttp import web

from veil.adapters.node.client_session import Client, open_client


class SharedClient:
    def __init__(self, node_dir: Path) -> None:
        self.node_dir = node_dir
        self._stack = AsyncExitStack()
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        async with self._lock:
            if self._client is None:
                self._client = await self._stack.enter_async_context(open_client(self.node_dir))
            return self._client

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Client]:
        """``async with``, so a route reads as it would with ``open_client``."""
        yield await self.get()

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()


UI_CLIENT = web.AppKey("veil.ui.client", SharedClient)


def install(app: web.Application, node_dir: Path) -> SharedClient:
    shared = SharedClient(node_dir)
    app[UI_CLIENT] = shared

    async def closing(_app: web.Application) -> None:
        await shared.close()

    app.on_cleanup.append(closing)
    return shared


def shared_of(request: web.Request) -> SharedClient:
    return request.app[UI_CLIENT]


def client_of(request: web.Request) -> AbstractAsyncContextManager[Client]:
    """The shared client for a route: ``async with client_of(request) as client``."""
    return shared_of(request).use()
