"""Small immutable files in one request per server (veil's batch extension).

A file whose shares fit in a batch (``wire_batch.MAX_BATCH_SHARE``) is encoded
whole in memory; each chosen server then gets all its shares, allocation and
data together, in one ``upload_batch`` call; a download asks servers for whole
shares with ``read_batch`` and decodes in memory. Calls to one server are
coalesced: while one request is in flight, the items of other files queue
and leave together in the next, so many files at once cost about one request
per server per round trip instead of some twenty requests per file.

Used only when every usable server offers the extension (``offers_batch``);
otherwise the callers use the standard calls (``veil.services.immutable.uploader`` /
``downloader``), so mixed grids and Tahoe servers see only the protocol.
Placement and happiness are the standard ones (``veil.formats.placement``,
``PlacementPlan``'s error messages).
"""

from __future__ import annotations

import asyncio
import functools
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from veil.codec import make_codec
from veil.errors import IntegrityError, NotEnoughSharesError, QuotaExceeded, VeilError
from veil.formats.caps import CHKReadCap
from veil.formats.decoder import ShareValidator
from veil.formats.hashes import lease_secrets_for
from veil.formats.params import EncodingParameters, FileGeometry
from veil.formats.placement import place_shares
from veil.formats.whole_shares import check_whole_share, decode_whole, encode_whole
from veil.formats.wire_batch import (
    MAX_BATCH_BODY,
    MAX_BATCH_ITEMS,
    MAX_BATCH_SHARE,
    BatchUpload,
    BatchUploadResult,
    offers_batch,
)
from veil.services.broker import StorageBroker
from veil.services.immutable.placement_plan import PlacementPlan
from veil.services.interfaces import BatchStorageClient, StorageClient
from veil.services.patience import gather_patiently

T = TypeVar("T")
R = TypeVar("R")
MAX_ROUNDS = 4
IN_FLIGHT = 2  # batch requests outstanding per server
INLINE_ENCODE = 64 * 1024  # larger files are encoded in a worker thread


class _Coalescer(Generic[T, R]):
    """Sends queued items in batches, at most ``IN_FLIGHT`` requests at a time: a
    second request starts only when items wait while every sender is busy, so the
    server works on one batch while the next travels."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]], size: Callable[[T], int]):
        self._send = send
        self._size = size
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._collecting = 0  # senders not in a request: they will take what is queued

    async def call(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if not self._collecting and len(self._tasks) < IN_FLIGHT:
            self._collecting += 1
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        size = 0
        while self._queue and len(batch) < MAX_BATCH_ITEMS:
            item_size = self._size(self._queue[0][0])
            if batch and size + item_size > MAX_BATCH_BODY - 64 * 1024:
                break
            batch.append(self._queue.pop(0))
            size += item_size
        return [(i, f) for i, f in batch if not f.done()]

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # let the callers of this loop turn join the first batch
            while self._queue:
                batch = self._take()
                if not batch:
                    continue
                self._collecting -= 1
                try:
                    results = await self._send([i for i, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                finally:
                    self._collecting += 1
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._collecting -= 1


class _Sender:
    def __init__(self, client: BatchStorageClient) -> None:
        self.uploads: _Coalescer[BatchUpload, BatchUploadResult] = _Coalescer(
            client.upload_batch, lambda i: i.allocated_size * len(i.shares) + 200
        )
        self.reads: _Coalescer[bytes, dict[int, bytes | int]] = _Coalescer(
            client.read_batch, lambda _: 64
        )


_senders: weakref.WeakKeyDictionary[object, _Sender] = weakref.WeakKeyDictionary()


def _sender(client: BatchStorageClient) -> _Sender:
    sender = _senders.get(client)
    if sender is None:
        sender = _senders[client] = _Sender(client)
    return sender


@dataclass(frozen=True)
class SmallUpload:
    cap: CHKReadCap
    placements: dict[int, str]
    happiness: int
    pushed_bytes: int


@functools.cache
def _speaks_batch(kind: type) -> bool:
    """Whether clients of this class have the batch calls (a protocol check is slow)."""
    return issubclass(kind, BatchStorageClient)


async def _batch_servers(
    broker: StorageBroker, storage_index: bytes, failures: dict[str, VeilError]
) -> list[StorageClient] | None:
    """The permuted servers that answer, if every one of them offers batches;
    the others' failures go into ``failures``."""
    candidates = broker.permuted(storage_index)
    versions = await broker.versions(candidates)
    usable: list[StorageClient] = []
    for server in candidates:
        version = versions[server.server_id]
        if isinstance(version, VeilError):
            failures[server.server_id] = version
            continue
        if not _speaks_batch(type(server)) or not offers_batch(version.application_version):
            return None
        usable.append(server)
    return usable or None


async def upload_small(
    broker: StorageBroker,
    params: EncodingParameters,
    readkey: bytes,
    data: bytes,
    *,
    lease_secret: bytes,
    codec_backend: str = "auto",
) -> SmallUpload | None:
    """Upload ``data`` in batches, or None when the standard calls must be used."""
    geometry = FileGeometry.for_upload(
        len(data), params.needed, params.total, params.max_segment_size
    )
    codec = make_codec(params.needed, params.total, backend=codec_backend)
    if len(data) > INLINE_ENCODE:
        cap, shares, allocated = await asyncio.to_thread(
            encode_whole, readkey, data, geometry, codec
        )
    else:
        cap, shares, allocated = encode_whole(readkey, data, geometry, codec)
    if allocated > MAX_BATCH_SHARE:
        return None
    si = cap.storage_index
    unreachable: dict[str, VeilError] = {}
    servers = await _batch_servers(broker, si, unreachable)
    if servers is None:
        return None
    servers = servers[: 2 * params.total]
    by_id = {s.server_id: s for s in servers}
    plan = PlacementPlan(si, params)
    plan.asked = len(servers) + len(unreachable)
    for sid, exc in unreachable.items():
        plan.fail(sid, exc)
    held: dict[str, set[int]] = {}
    pushed = 0

    def item_for(server: StorageClient, shnums: set[int]) -> BatchUpload:
        renew, cancel = lease_secrets_for(lease_secret, si, server.lease_seed)
        upload = os.urandom(32)
        return BatchUpload(si, allocated, renew, cancel, upload, {s: shares[s] for s in shnums})

    for _ in range(MAX_ROUNDS):
        live = [sid for sid in by_id if sid not in plan.failed]
        if not live:
            break
        placement = place_shares(live, [], params.total, held)
        wanted: dict[str, set[int]] = {}
        for shnum, sid in placement.items():
            if shnum not in plan.existing and shnum not in held.get(sid, set()):
                wanted.setdefault(sid, set()).add(shnum)
        if not wanted:
            break
        calls = []
        for sid, shnums in wanted.items():
            server = by_id[sid]
            batch = cast(BatchStorageClient, server)
            calls.append(_sender(batch).uploads.call(item_for(server, shnums)))
        results = await gather_patiently(calls)
        for (sid, shnums), result in zip(wanted.items(), results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, VeilError):
                    raise result
                plan.fail(sid, result)
                broker.forget_version(sid)
                continue
            if result.refused:
                plan.fail(sid, _refusal(sid, result.status, result.reason))
                continue
            got = set(result.written | result.already_have)
            pushed += allocated * len(result.written)
            held.setdefault(sid, set()).update(got)
            for shnum in got:
                plan.existing.setdefault(shnum, set()).add(sid)
            if shnums - got:
                plan.fail(sid, VeilError("it did not take every share offered (full or busy)"))
    plan.check_happy()
    return SmallUpload(cap, plan.placements(), plan.happiness(), pushed)


def _refusal(server_id: str, status: int, reason: str) -> VeilError:
    """A batched item refused as a whole, as the standard calls would say it."""
    if status == QuotaExceeded.status and reason.startswith(QuotaExceeded.MARK):
        return QuotaExceeded(f"server {server_id[:16]} refused: {reason}")
    return VeilError(reason or f"refused ({status})")


async def read_small(
    broker: StorageBroker, cap: CHKReadCap, *, codec_backend: str = "auto"
) -> bytes | None:
    """The file's bytes from whole batched shares, or None to use the standard calls."""
    unreachable: dict[str, VeilError] = {}
    servers = await _batch_servers(broker, cap.storage_index, unreachable)
    if servers is None:
        return None
    k = cap.needed_shares
    checked: dict[int, tuple[ShareValidator, bytes]] = {}
    problems = [f"{sid[:12]}: {exc}" for sid, exc in unreachable.items()]
    asked = 0
    while len(checked) < k and asked < len(servers):
        ask = servers[asked : asked + (k + 2 if asked == 0 else len(servers))]
        asked += len(ask)
        calls = []
        for server in ask:
            batch = cast(BatchStorageClient, server)
            calls.append(_sender(batch).reads.call(cap.storage_index))
        answers = await gather_patiently(calls)
        for server, answer in zip(ask, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, VeilError):
                    raise answer
                problems.append(f"{server.server_id[:12]}: {answer}")
                continue
            for shnum, share in answer.items():
                if isinstance(share, int):
                    return None  # too large for a batch: the standard reads
                if shnum in checked:
                    continue
                try:
                    checked[shnum] = (check_whole_share(cap, shnum, share), share)
                except IntegrityError as exc:
                    problems.append(f"{server.server_id[:12]}: {exc}")
                    await _report(server, cap, shnum, str(exc))
    if len(checked) < k:
        raise NotEnoughSharesError(
            f"found only {len(checked)} good shares of {k} needed",
            hint="; ".join(problems[:3]) if problems else "the servers hold too few shares",
        )
    codec = make_codec(k, cap.total_shares, backend=codec_backend)
    return decode_whole(cap, checked, codec)


async def _report(server: StorageClient, cap: CHKReadCap, shnum: int, reason: str) -> None:
    try:
        await server.advise_corrupt_share(cap.storage_index, shnum, reason)
    except VeilError:
        pass
