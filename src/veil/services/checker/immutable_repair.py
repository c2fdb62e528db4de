"""Repair an immutable file from its verify cap: regenerate shares and place them.

The repairer reads k good shares, and for each segment decodes the
ciphertext (checked against the crypttext hash tree, so a bad block is
caught before it spreads), erasure-codes it again into all N blocks and
writes the blocks of the shares it places. Once every segment is done it
builds each new share's block hash tree and share hash chain; the share hash
tree it rebuilt must have the root the UEB holds, or nothing is finished.
The result is byte for byte the share Tahoe's uploader would have written,
so Tahoe's checker sees it as healthy. Plaintext is never seen: the verify
cap is enough.

Where shares go: each missing share to the responding server holding the
fewest good shares (earliest in the permuted ring), never one that already
has a file of that number (a corrupt one stays where it is, as in Tahoe);
then, while happiness is short of ``happy``, copies onto servers holding none.
New shares carry a lease under the caller's lease secret.
"""

from __future__ import annotations

import asyncio
import os

from veil.codec import make_codec
from veil.errors import IntegrityError, UnhappinessError, VeilError
from veil.formats.caps import CHKVerifyCap
from veil.formats.decoder import SegmentDecoder
from veil.formats.hashes import block_hash
from veil.formats.merkle import build_tree, tahoe_chain_order
from veil.formats.placement import happiness
from veil.formats.share_layout import pack_chain
from veil.services.broker import StorageBroker
from veil.services.checker.immutable import (
    CALL_TIMEOUT,
    CheckedShare,
    ImmutableCheck,
    LeaseSecrets,
    read_block,
    read_share_head,
)
from veil.services.interfaces import StorageClient

WRITE_BATCH = 256 * 1024


def choose_targets(
    ring: list[str],
    held: dict[str, set[int]],
    good: dict[int, set[str]],
    total: int,
    happy: int,
) -> dict[str, set[int]]:
    """{server id: shares to write there} (pure; ``ring`` holds responding servers)."""
    load = {sid: 0 for sid in ring}
    for servers in good.values():
        for sid in servers:
            if sid in load:
                load[sid] += 1
    holders = {sh: set(s) for sh, s in good.items()}
    targets: dict[str, set[int]] = {}

    def put(sid: str, sh: int) -> None:
        targets.setdefault(sid, set()).add(sh)
        holders.setdefault(sh, set()).add(sid)
        load[sid] += 1

    for sh in range(total):
        if sh in good:
            continue
        free = [sid for sid in ring if sh not in held.get(sid, set()) | targets.get(sid, set())]
        if free:
            put(min(free, key=lambda sid: (load[sid], ring.index(sid))), sh)
    for sid in ring:
        if happiness(holders) >= happy:
            break
        if load[sid] or held.get(sid):
            continue
        busiest = max(ring, key=lambda s: load[s])
        shares = [sh for sh, hs in holders.items() if busiest in hs]
        if shares:
            put(sid, min(shares, key=lambda sh: (len(holders[sh]), sh)))
    return targets


class _Target:
    def __init__(self, server: StorageClient, shnum: int, secret: bytes) -> None:
        self.server = server
        self.shnum = shnum
        self.secret = secret
        self.pending: list[bytes] = []
        self.offset = 0
        self.buffered = 0

    async def write(self, si: bytes, offset: int, data: bytes) -> None:
        await asyncio.wait_for(
            self.server.write_share_chunk(si, self.shnum, offset, data, upload_secret=self.secret),
            CALL_TIMEOUT,
        )

    async def flush(self, si: bytes) -> None:
        if self.pending:
            data = b"".join(self.pending)
            self.pending, self.buffered = [], 0
            await self.write(si, self.offset, data)
            self.offset += len(data)


async def _sources(
    broker: StorageBroker, cap: CHKVerifyCap, check: ImmutableCheck
) -> list[CheckedShare]:
    """k good shares with distinct numbers (trailers checked; blocks as they are read)."""
    chosen: dict[int, CheckedShare] = {c.shnum: c for c in check.verified}
    if len(chosen) < cap.needed_shares:
        for server in broker.permuted(cap.storage_index):
            for shnum in sorted(check.held.get(server.server_id, set())):
                if shnum in chosen or shnum not in check.results.sharemap:
                    continue
                try:
                    v, head, trailer = await read_share_head(server, cap, shnum)
                except (VeilError, TimeoutError):
                    continue
                chosen[shnum] = CheckedShare(server, shnum, v, head, trailer)
    if len(chosen) < cap.needed_shares:
        raise IntegrityError(
            f"only {len(chosen)} good shares of the {cap.needed_shares} needed to repair"
        )
    return [chosen[sh] for sh in sorted(chosen)[: cap.needed_shares]]


async def repair_immutable(
    broker: StorageBroker,
    cap: CHKVerifyCap,
    check: ImmutableCheck,
    *,
    happy: int,
    lease_secrets: LeaseSecrets,
) -> int:
    """Regenerate and place shares; returns how many were written."""
    si = cap.storage_index
    sources = await _sources(broker, cap, check)
    ring = [s.server_id for s in broker.permuted(si) if s.server_id in check.held]
    targets = choose_targets(
        ring, check.held, check.results.sharemap, cap.total_shares, min(happy, len(ring))
    )
    if not targets:
        raise UnhappinessError("no responding server can take the missing shares")
    first = sources[0]
    lay = first.validator.layout
    base = lay.crypttext_tree
    size_len = lay.ueb_length_size
    ueb_len = int.from_bytes(first.trailer[lay.ueb - base : lay.ueb - base + size_len], "big")
    ueb_field = first.trailer[lay.ueb - base : lay.ueb - base + size_len + ueb_len]
    allocated = lay.ueb + size_len + ueb_len
    by_id = {s.server_id: s for s in broker.servers}
    open_: list[_Target] = []
    for sid, shares in targets.items():
        server = by_id[sid]
        renew, cancel = lease_secrets(si, server.lease_seed)
        secret = os.urandom(20)
        try:
            got = await asyncio.wait_for(
                server.allocate_buckets(
                    si,
                    frozenset(shares),
                    allocated,
                    renew_secret=renew,
                    cancel_secret=cancel,
                    upload_secret=secret,
                ),
                CALL_TIMEOUT,
            )
        except (VeilError, TimeoutError):
            continue
        open_.extend(_Target(server, sh, secret) for sh in sorted(got.allocated))
    try:
        await _write_all(cap, sources, open_, ueb_field, base)
    except BaseException:
        await _abort(si, open_)
        raise
    return len(open_)


async def _write_all(
    cap: CHKVerifyCap,
    sources: list[CheckedShare],
    targets: list[_Target],
    ueb_field: bytes,
    base: int,
) -> None:
    si = cap.storage_index
    first = sources[0]
    lay, g = first.validator.layout, first.validator.geometry
    codec = make_codec(cap.needed_shares, cap.total_shares)
    decoder = SegmentDecoder(None, first.validator, codec)
    hashes: list[list[bytes]] = [[] for _ in range(cap.total_shares)]
    for t in targets:
        await t.write(si, 0, first.head[: lay.data])
        t.offset = lay.data
    for segnum in range(g.num_segments):
        blocks = [await read_block(s.server, s.validator, s.head, segnum) for s in sources]
        shnums = [s.shnum for s in sources]
        crypttext = await asyncio.to_thread(decoder.crypttext, segnum, blocks, shnums)
        padded = crypttext + bytes(g.block_length(segnum) * g.needed - len(crypttext))
        coded = [bytes(b) for b in await asyncio.to_thread(codec.encode_segment, padded)]
        for sh, block in enumerate(coded):
            hashes[sh].append(block_hash(block))
        for t in targets:
            t.pending.append(coded[t.shnum])
            t.buffered += len(coded[t.shnum])
        await asyncio.gather(*(t.flush(si) for t in targets if t.buffered >= WRITE_BATCH))
    await asyncio.gather(*(t.flush(si) for t in targets))
    block_trees = [build_tree(h) for h in hashes]
    share_tree = build_tree([tree[0] for tree in block_trees])
    ueb = first.validator.ueb
    if ueb is None or share_tree[0] != ueb.share_root_hash:
        raise IntegrityError("the regenerated shares do not match the file's share hash tree")
    zero_tree = bytes(lay.crypttext_tree - lay.plaintext_tree)
    ct_bytes = first.trailer[: lay.block_hashes - base]
    for t in targets:
        chain = [(i, share_tree[i]) for i in tahoe_chain_order(t.shnum, cap.total_shares)]
        trailer = b"".join(
            (zero_tree, ct_bytes, b"".join(block_trees[t.shnum]), pack_chain(chain), ueb_field)
        )
        await t.write(si, lay.plaintext_tree, trailer)


async def _abort(si: bytes, targets: list[_Target]) -> None:
    for t in targets:
        try:
            await asyncio.wait_for(
                t.server.abort_upload(si, t.shnum, upload_secret=t.secret), CALL_TIMEOUT
            )
        except (VeilError, TimeoutError):
            pass
