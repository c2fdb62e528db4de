"""The HTTP routes of veil's batch extension (``veil.formats.wire_batch``).

Registered beside the standard routes of ``storage_server.StorageHTTPApp``,
behind the same Authorization check; the work is done by
``veil.services.storage.batch`` through the same storage core (in its worker
thread), so each batched share gets exactly the standard calls' checks.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from aiohttp import web

from veil.adapters.http.request_parsing import cbor, cbor_body
from veil.adapters.storage.durable import PARALLEL_FROM
from veil.formats import wire_batch
from veil.services.interfaces import StorageService
from veil.services.storage.batch import (
    run_mutable_read_batch,
    run_read_batch,
    run_upload_batch_deferred,
)

Core = Callable[..., Awaitable[Any]]
T = TypeVar("T")


class Durably(Protocol):
    def __call__(
        self, work: Callable[[], tuple[T, Callable[[], None]]], *, small: bool
    ) -> Awaitable[T]: ...


def add_batch_routes(
    app: web.Application,
    service: StorageService,
    core: Core,
    durably: Durably,
    account_key: web.RequestKey[int],
) -> None:
    """Serve the batch paths; ``core(fn, *args)`` runs ``fn`` as the app runs core
    calls, ``durably(work, small=...)`` runs a ``work`` that returns its result and the
    flush making it durable, and answers after the flush; uploads act for the account
    the guard put in ``request[account_key]``."""

    async def upload(request: web.Request) -> web.Response:
        body = await cbor_body(request, wire_batch.MAX_BATCH_BODY)
        items = wire_batch.decode_upload_request(body)
        account = request.get(account_key, 0)
        small = sum(len(item.shares) for item in items) < PARALLEL_FROM
        results = await durably(
            functools.partial(run_upload_batch_deferred, service, items, account), small=small
        )
        return cbor(request, wire_batch.encode_upload_answer(results))

    async def read(request: web.Request) -> web.Response:
        body = await cbor_body(request, 64 * 1024)
        storage_indexes = wire_batch.decode_read_request(body)
        answers = await core(run_read_batch, service, storage_indexes)
        return cbor(request, wire_batch.encode_read_answer(answers))

    async def mutable_read(request: web.Request) -> web.Response:
        body = await cbor_body(request, 1024)
        storage_index, length = wire_batch.decode_mutable_read_request(body)
        prefixes = await core(run_mutable_read_batch, service, storage_index, length)
        return cbor(request, wire_batch.encode_mutable_read_answer(prefixes))

    app.router.add_post(wire_batch.UPLOAD_PATH, upload)
    app.router.add_post(wire_batch.READ_PATH, read)
    app.router.add_post(wire_batch.MUTABLE_READ_PATH, mutable_read)
