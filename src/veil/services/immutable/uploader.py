"""Upload an immutable file: convergent key, placement, streamed encode and push.

Memory is bounded: at most two segments are in flight (one being encoded in a
worker thread while the previous one is written to every server in parallel),
whatever the file size. The plaintext is read twice when the key is
convergent (once to hash it, once to encode it), as Tahoe does.

A server that fails mid-upload, or stops answering while the others write
(``veil.services.patience``), loses its shares; the upload goes on while
the remaining placement still reaches ``shares.happy`` and fails with
``UnhappinessError`` otherwise. Unfinished shares are aborted, so they never
become readable.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

from veil.codec import make_codec
from veil.errors import UploadError, VeilError
from veil.formats.caps import CHKReadCap, LiteralCap
from veil.formats.encoder import EncodedFile, EncodedSegment, ImmutableEncoder
from veil.formats.hashes import convergence_hasher, lease_secrets_for, storage_index_from_readkey
from veil.formats.params import LIT_SIZE_THRESHOLD, EncodingParameters, FileGeometry
from veil.formats.wire_batch import MAX_BATCH_SHARE
from veil.services.broker import StorageBroker
from veil.services.immutable.placement_plan import PlacementPlan, plan_placement
from veil.services.immutable.small_files import upload_small
from veil.services.patience import gather_patiently

READ_CHUNK = 1024 * 1024
T = TypeVar("T")
INLINE_WORK = 64 * 1024  # files up to this size are read and hashed on the event loop
WRITE_BATCH = 256 * 1024  # bytes buffered per share before a PATCH
WRITES_IN_FLIGHT = 1  # batches of PATCH requests outstanding (memory stays bounded)


@dataclass
class UploadResult:
    cap: CHKReadCap | LiteralCap
    placements: dict[int, str] = field(default_factory=dict)  # share number → server id
    happiness: int = 0
    pushed_bytes: int = 0


async def _off_loop(size: int, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, or here for a small file (the hop to a
    thread costs more than reading and hashing a few KiB)."""
    if size <= INLINE_WORK:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def _read_exact(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise UploadError("the file changed size while it was being uploaded")
    return data


def convergent_key(f: BinaryIO, size: int, params: EncodingParameters, secret: bytes) -> bytes:
    """The convergent read key of the whole file (blocking: run in a thread)."""
    g = FileGeometry.for_upload(size, params.needed, params.total, params.max_segment_size)
    hasher = convergence_hasher(params.needed, params.total, g.segment_size, secret)
    f.seek(0)
    remaining = size
    while remaining:
        chunk = f.read(min(READ_CHUNK, remaining))
        if not chunk:
            raise UploadError("the file changed size while it was being uploaded")
        hasher.update(chunk)
        remaining -= len(chunk)
    return hasher.digest()


class _ShareWriter:
    """Buffers one share's bytes and writes them in ~1 MB PATCH requests."""

    def __init__(self, plan: PlacementPlan, shnum: int) -> None:
        self.plan = plan
        self.shnum = shnum
        self.offset = 0
        self.buffer: list[bytes | memoryview] = []
        self.buffered = 0

    def add(self, data: bytes | memoryview) -> None:
        self.buffer.append(data)
        self.buffered += len(data)

    async def flush(self, *, final: bool = False) -> int:
        if not self.buffered:
            return 0
        data = self.buffer[0] if len(self.buffer) == 1 else b"".join(self.buffer)
        offset = self.offset
        self.buffer, self.buffered = [], 0
        self.offset += len(data)
        result = await self.plan.write(self.shnum, offset, data)
        if final and not result.complete:
            raise UploadError(f"server kept share {self.shnum} incomplete after the last write")
        return len(data)


class Uploader:
    """Uploads files to the servers of a ``StorageBroker``."""

    def __init__(
        self,
        broker: StorageBroker,
        params: EncodingParameters,
        *,
        lease_secret: bytes,
        convergence_secret: bytes | None,
        codec_backend: str = "auto",
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.broker = broker
        self.params = params
        self.lease_secret = lease_secret
        self.convergence_secret = convergence_secret
        self.codec_backend = codec_backend
        self.progress = progress

    async def upload_bytes(self, data: bytes) -> UploadResult:
        return await self.upload_file(io.BytesIO(data), len(data))

    async def upload_file(self, f: BinaryIO, size: int) -> UploadResult:
        """Upload ``size`` bytes of the seekable file ``f``; return its cap."""
        if size <= LIT_SIZE_THRESHOLD:
            f.seek(0)
            return UploadResult(LiteralCap(_read_exact(f, 0, size)))
        p = self.params
        if self.convergence_secret is None:
            readkey = os.urandom(16)
        else:
            readkey = await _off_loop(size, convergent_key, f, size, p, self.convergence_secret)
        geometry = FileGeometry.for_upload(size, p.needed, p.total, p.max_segment_size)
        codec = make_codec(p.needed, p.total, backend=self.codec_backend)
        encoder = ImmutableEncoder(readkey, geometry, codec)
        if encoder.allocated_size <= MAX_BATCH_SHARE:
            data = await _off_loop(size, _read_exact, f, 0, size)
            small = await upload_small(
                self.broker,
                p,
                readkey,
                data,
                lease_secret=self.lease_secret,
                codec_backend=self.codec_backend,
            )
            if small is not None:  # every server speaks veil's batch extension
                if self.progress:
                    self.progress(size)
                return UploadResult(
                    small.cap, small.placements, small.happiness, small.pushed_bytes
                )
        si = storage_index_from_readkey(readkey)

        def secrets(lease_seed: bytes) -> tuple[bytes, bytes]:
            return lease_secrets_for(self.lease_secret, si, lease_seed)

        plan = await plan_placement(self.broker, si, p, encoder.allocated_size, secrets=secrets)
        try:
            done, pushed = await self._push(f, encoder, plan)
        except BaseException:
            await plan.abort_all()
            raise
        return UploadResult(done.cap, plan.placements(), plan.happiness(), pushed)

    async def _push(
        self, f: BinaryIO, encoder: ImmutableEncoder, plan: PlacementPlan
    ) -> tuple[EncodedFile, int]:
        g = encoder.geometry
        writers = {shnum: _ShareWriter(plan, shnum) for shnum in plan.shares_to_write()}
        header = encoder.header()
        for w in writers.values():
            w.add(header)
        pushed = 0

        def encode(segnum: int) -> EncodedSegment:
            data = _read_exact(f, segnum * g.segment_size, g.segment_length(segnum))
            return encoder.encode_segment(data)

        async def write_batch(final: bool) -> int:
            live = [w for w in writers.values() if plan.is_live(w.shnum)]
            todo = [w for w in live if final or w.buffered >= WRITE_BATCH]
            # a server that stops answering while the others write is dropped
            results = await gather_patiently(
                [w.flush(final=final) for w in todo], patience=self.broker.patience
            )
            written = 0
            for w, result in zip(todo, results, strict=True):
                if isinstance(result, int):
                    written += result
                elif not isinstance(result, VeilError):
                    raise result
                elif plan.is_live(w.shnum):
                    await plan.lose_server_of(w.shnum, result)
            return written

        pending: list[asyncio.Task[int]] = []
        next_segment = asyncio.ensure_future(asyncio.to_thread(encode, 0))
        for segnum in range(g.num_segments):
            segment = await next_segment
            if segnum + 1 < g.num_segments:
                next_segment = asyncio.ensure_future(asyncio.to_thread(encode, segnum + 1))
            for shnum, w in writers.items():
                if plan.is_live(shnum):
                    w.add(segment.blocks[shnum])
            while len(pending) >= WRITES_IN_FLIGHT:
                pushed += await pending.pop(0)
            pending.append(asyncio.ensure_future(write_batch(final=False)))
            if self.progress:
                self.progress(g.segment_length(segnum))
        for task in pending:
            pushed += await task
        done = encoder.finish()
        for shnum, w in writers.items():
            w.add(done.trailers[shnum])
        pushed += await write_batch(final=True)
        plan.check_happy()
        return done, pushed


__all__ = ["UploadResult", "Uploader", "convergent_key"]
