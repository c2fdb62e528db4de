"""Download an immutable file, or a byte range of it, checking every hash.

The downloader asks every server (in permuted order) which shares it holds,
takes k shares from the servers that answered first, preferring the primary
shares 0..k-1 (which need no decoding), and streams segments with a bounded
read-ahead. A share whose server fails or whose bytes do not match the hashes
is dropped (and reported to its server when corrupt) and replaced by another;
so is a share whose server stops answering while the others send
(``veil.services.patience``).
No byte is ever returned unless it was checked against the read cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from veil.codec import make_codec
from veil.errors import IntegrityError, NotEnoughSharesError, ServerUnavailable, VeilError
from veil.formats.caps import CHKReadCap, LiteralCap
from veil.formats.decoder import FIRST_READ_SIZE, SegmentDecoder, ShareValidator, trailer_range
from veil.formats.wire_batch import MAX_BATCH_SHARE
from veil.services.broker import StorageBroker
from veil.services.immutable.small_files import read_small
from veil.services.interfaces import StorageClient
from veil.services.patience import abandon, gather_patiently
from veil.services.server_failures import entry, summary

READ_AHEAD = 4  # segments fetched ahead of the one being returned
LIST_TIMEOUT = 15.0
LOCATE_GRACE = 0.05  # seconds to wait for more answers once k shares are known
READ_TIMEOUT = 60.0


@dataclass
class _Share:
    server: StorageClient
    shnum: int
    validator: ShareValidator
    prefix: bytes  # the first bytes of the share, kept to serve small blocks from

    async def block(self, segnum: int) -> bytes:
        """The raw block of segment ``segnum``; the caller checks it (``check_block``)."""
        offset, length = self.validator.block_offset(segnum)
        if offset + length <= len(self.prefix):
            data = self.prefix[offset : offset + length]
        else:
            si = self.validator.cap.storage_index
            data = await asyncio.wait_for(
                self.server.read_share_chunk(si, self.shnum, offset, length), READ_TIMEOUT
            )
        return data


@dataclass
class DownloadStats:
    corrupt_shares: list[tuple[str, int]] = field(default_factory=list)
    failed_servers: list[str] = field(default_factory=list)  # "v0-abc: why", for hints
    failures: list[BaseException] = field(default_factory=list)
    asked: int = 0  # servers asked for shares


class _ShareSet:
    """The k shares in use, and the candidates to replace them with."""

    def __init__(
        self,
        cap: CHKReadCap,
        candidates: list[tuple[StorageClient, int]],
        pending: list[asyncio.Task[None]],
        patience: float,
    ) -> None:
        self.cap = cap
        self.patience = patience
        self.candidates = candidates  # grows while ``pending`` servers answer
        self.pending = pending
        self.active: list[_Share] = []
        self.stats = DownloadStats()
        self._lock = asyncio.Lock()

    async def fill(self) -> None:
        """Make sure k shares with distinct numbers are validated and active."""
        async with self._lock:
            k = self.cap.needed_shares
            while len(self.active) < k:
                used = {s.shnum for s in self.active}
                picks = _pick(self.candidates, used, k - len(self.active))
                waiting = [t for t in self.pending if not t.done()]
                if not picks and waiting:
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if not picks:
                    lead = summary(self.stats.failures, self.stats.asked)
                    raise NotEnoughSharesError(
                        f"found only {len(self.active)} good shares of the "
                        f"{k} needed to rebuild the file" + (f" ({lead})" if lead else ""),
                        hint=_failure_hint(self.stats),
                    )
                for p in picks:
                    self.candidates.remove(p)
                opened = await gather_patiently(
                    [self._open(s, n) for s, n in picks], patience=self.patience
                )
                for (server, shnum), result in zip(picks, opened, strict=True):
                    if isinstance(result, _Share):
                        self.active.append(result)
                    elif isinstance(result, VeilError | TimeoutError):
                        await self.drop_failure(server, shnum, result)
                    else:
                        raise result

    async def _open(self, server: StorageClient, shnum: int) -> _Share:
        si = self.cap.storage_index
        head = await asyncio.wait_for(
            server.read_share_chunk(si, shnum, 0, FIRST_READ_SIZE), READ_TIMEOUT
        )
        validator = ShareValidator(self.cap, shnum, head)
        tr = trailer_range(validator.layout)
        if tr.offset + tr.length <= len(head) or len(head) < FIRST_READ_SIZE:
            trailer = head[tr.offset : tr.offset + tr.length]
        else:
            trailer = await asyncio.wait_for(
                server.read_share_chunk(si, shnum, tr.offset, tr.length), READ_TIMEOUT
            )
        validator.validate_trailer(trailer)
        return _Share(server, shnum, validator, head)

    async def drop(self, share: _Share, exc: BaseException) -> None:
        if share in self.active:
            self.active.remove(share)
        await self.drop_failure(share.server, share.shnum, exc)

    async def drop_failure(self, server: StorageClient, shnum: int, exc: BaseException) -> None:
        if isinstance(exc, IntegrityError):
            self.stats.corrupt_shares.append((server.server_id, shnum))
            try:
                await asyncio.wait_for(
                    server.advise_corrupt_share(self.cap.storage_index, shnum, str(exc)), 10
                )
            except (VeilError, TimeoutError):
                pass
        else:
            self.stats.failures.append(exc)
            self.stats.failed_servers.append(entry(server.server_id, exc))
            # A dead server's other shares are no better: forget them.
            self.candidates[:] = [(s, n) for s, n in self.candidates if s is not server]


def _pick(
    candidates: list[tuple[StorageClient, int]], used: set[int], count: int
) -> list[tuple[StorageClient, int]]:
    """Choose shares: primary share numbers first, then spread over servers."""
    k_order = sorted(candidates, key=lambda c: c[1])
    picks: list[tuple[StorageClient, int]] = []
    taken = set(used)
    busy: set[str] = set()
    for spread in (True, False):
        for server, shnum in k_order:
            if len(picks) == count:
                return picks
            if shnum in taken or (spread and server.server_id in busy):
                continue
            picks.append((server, shnum))
            taken.add(shnum)
            busy.add(server.server_id)
    return picks


def _check_and_decode(
    decoder: SegmentDecoder, segnum: int, shares: list[_Share], blocks: list[bytes]
) -> bytes | tuple[_Share, IntegrityError]:
    """Plaintext of a segment, or the first share whose block is corrupt."""
    for share, block in zip(shares, blocks, strict=True):
        try:
            share.validator.check_block(segnum, block)
        except IntegrityError as exc:
            return share, exc
    crypttext = decoder.crypttext(segnum, blocks, [s.shnum for s in shares])
    return decoder.plaintext(segnum, crypttext)


def _failure_hint(stats: DownloadStats) -> str:
    parts = []
    if stats.corrupt_shares:
        parts.append(f"{len(stats.corrupt_shares)} corrupt share(s) were reported")
    if stats.failed_servers:
        parts.append("unreachable: " + "; ".join(stats.failed_servers[:3]))
    return ", ".join(parts) or "are enough storage servers running?"


# Files whose shares are at most about this size are read in one batched request
# per server when the servers offer it (``veil.services.immutable.small_files``).
SMALL_FILE = MAX_BATCH_SHARE - 16 * 1024


class Downloader:
    """Reads files from the servers of a ``StorageBroker``."""

    def __init__(self, broker: StorageBroker, *, codec_backend: str = "auto") -> None:
        self.broker = broker
        self.codec_backend = codec_backend
        self.last_stats = DownloadStats()

    async def download_bytes(self, cap: CHKReadCap | LiteralCap) -> bytes:
        return b"".join([chunk async for chunk in self.stream(cap)])

    async def stream(
        self, cap: CHKReadCap | LiteralCap, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield the checked plaintext of ``[offset, offset+length)``."""
        end = cap.size if length is None else min(cap.size, offset + length)
        if isinstance(cap, LiteralCap):
            if offset < end:
                yield cap.data[offset:end]
            return
        if offset >= end:
            return
        if cap.size <= SMALL_FILE * cap.needed_shares:
            whole = await read_small(self.broker, cap, codec_backend=self.codec_backend)
            if whole is not None:  # every server speaks veil's batch extension
                yield whole[offset:end]
                return
        shares = _ShareSet(cap, [], [], self.broker.patience)
        self.last_stats = shares.stats
        stragglers = await self._locate(cap, shares)
        try:
            async for chunk in self._stream_segments(cap, shares, offset, end):
                yield chunk
        finally:
            for task in stragglers:
                task.cancel()
            await asyncio.gather(*stragglers, return_exceptions=True)  # connections let go

    async def _stream_segments(
        self, cap: CHKReadCap, shares: _ShareSet, offset: int, end: int
    ) -> AsyncIterator[bytes]:
        await shares.fill()
        g = shares.active[0].validator.geometry
        codec = make_codec(cap.needed_shares, cap.total_shares, backend=self.codec_backend)
        decoder = SegmentDecoder(cap.readkey, shares.active[0].validator, codec)
        first, last = offset // g.segment_size, (end - 1) // g.segment_size

        async def fetch(segnum: int) -> bytes:
            while True:
                await shares.fill()
                active = list(shares.active)
                # a server that stops answering while the others send is replaced
                results = await gather_patiently(
                    [s.block(segnum) for s in active], patience=shares.patience
                )
                bad = [
                    (s, r)
                    for s, r in zip(active, results, strict=True)
                    if isinstance(r, BaseException)
                ]
                for s, r in bad:
                    if not isinstance(r, VeilError | TimeoutError):
                        raise r
                    await shares.drop(s, r)
                if bad:
                    continue
                blocks = [r for r in results if isinstance(r, bytes)]

                # Hashing and decoding run off the event loop, which keeps fetching.
                outcome = await asyncio.to_thread(
                    _check_and_decode, decoder, segnum, active, blocks
                )
                if isinstance(outcome, bytes):
                    return outcome
                await shares.drop(*outcome)

        tasks: dict[int, asyncio.Task[bytes]] = {}
        try:
            for segnum in range(first, last + 1):
                for ahead in range(segnum, min(last, segnum + READ_AHEAD) + 1):
                    if ahead not in tasks:
                        tasks[ahead] = asyncio.ensure_future(fetch(ahead))
                plaintext = await tasks.pop(segnum)
                seg_start = segnum * g.segment_size
                lo = max(offset - seg_start, 0)
                hi = min(end - seg_start, len(plaintext))
                yield plaintext[lo:hi]
        finally:
            for task in tasks.values():
                abandon(task)  # read-ahead past a failure, or past where the reader stopped

    async def _locate(self, cap: CHKReadCap, into: _ShareSet) -> list[asyncio.Task[None]]:
        """Ask every server for its shares; return once k distinct shares are known.

        ``into.candidates`` keeps growing as slower servers answer (the
        returned tasks, also in ``into.pending``); the caller cancels those
        when done. Servers that fail are recorded in ``into.stats``.
        """
        si = cap.storage_index
        servers = self.broker.permuted(si)
        if not servers:
            raise NotEnoughSharesError("no storage servers are known")
        found = into.candidates
        into.stats.asked = len(servers)
        enough = asyncio.Event()

        async def ask(server: StorageClient) -> None:
            try:
                shares = await asyncio.wait_for(server.list_shares(si), LIST_TIMEOUT)
            except TimeoutError:
                why = ServerUnavailable(f"timed out after {LIST_TIMEOUT:.0f} s listing shares")
                into.stats.failures.append(why)
                into.stats.failed_servers.append(entry(server.server_id, why))
                return
            except VeilError as exc:
                into.stats.failures.append(exc)
                into.stats.failed_servers.append(entry(server.server_id, exc))
                return
            found.extend((server, sh) for sh in sorted(shares) if sh < cap.total_shares)
            if len({sh for _, sh in found}) >= cap.needed_shares:
                enough.set()

        tasks = [asyncio.ensure_future(ask(s)) for s in servers]
        everyone = asyncio.ensure_future(asyncio.wait(tasks))
        waiter = asyncio.ensure_future(enough.wait())
        await asyncio.wait([everyone, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not everyone.done():
            # Give the other servers a moment, so faster or primary shares can win.
            await asyncio.wait([everyone], timeout=LOCATE_GRACE)
        everyone.cancel()
        into.pending = [t for t in tasks if not t.done()]
        return into.pending
