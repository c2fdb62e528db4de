"""Repair a mutable file by putting back shares of the *same* version.

When the best version is recoverable and the only trouble is missing or
corrupt shares, the repairer rebuilds that version's missing shares from k
good ones: the blocks are decoded and erasure-coded again (ciphertext only:
no key is needed to do it), the share hash tree is rebuilt and must have the
root the signature covers, and each new share reuses the version's
signature, public key and encrypted signing key. Nothing is re-signed and the
sequence number stays (unlike Tahoe, whose repair always publishes seqnum+1,
trac #1209), so a healthy directory's version never moves.

Writing a mutable share needs the write enabler, so this needs a write cap.
Each share is written with a test of what the map saw in that place (a
corrupt or older share is replaced only if it is still what was seen; an
empty place only if it is still empty), so a concurrent publish wins.
"""

from __future__ import annotations

import asyncio

from veil.codec import make_codec
from veil.errors import IntegrityError, UnhappinessError, VeilError
from veil.formats import mdmf, merkle, sdmf
from veil.formats import mutable_caps as mc
from veil.formats.hashes import block_hash
from veil.formats.storage_types import TestWrite
from veil.services.checker.immutable import LeaseSecrets
from veil.services.checker.immutable_repair import choose_targets
from veil.services.checker.mutable import CALL_TIMEOUT, MutableCheck, SeenShare
from veil.services.interfaces import StorageClient
from veil.services.mutable.files import MutableFiles

MUST_NOT_EXIST = (0, 1, b"")


async def _sdmf_shares(
    si: bytes, fingerprint: bytes, sources: list[SeenShare], best: bytes
) -> dict[int, bytes]:
    """Every share number of the version, packed, rebuilt from k good shares."""
    good: dict[int, sdmf.SDMFShare] = {}
    for s in sources:
        if s.shnum in good:
            continue
        try:
            raw = await MutableFiles._read_whole(s.server, si, s.shnum)
            share = sdmf.parse_share(raw)
            sdmf.verify_share(share, s.shnum, fingerprint)
        except (VeilError, TimeoutError):
            continue
        if share.signed_prefix() == best:
            good[s.shnum] = share
        if len(good) == share.k:
            break
    first = next(iter(good.values()), None)
    if first is None or len(good) < first.k:
        raise IntegrityError("too few good shares of the version to rebuild the others")
    k, n = first.k, first.n
    if first.segsize:
        codec = make_codec(k, n)
        nums = sorted(good)[:k]
        pieces = codec.decode([good[i].block for i in nums], nums)
        blocks = [bytes(b) for b in codec.encode_segment(b"".join(bytes(p) for p in pieces))]
        leaves = [block_hash(b) for b in blocks]
    else:
        blocks, leaves = [b""] * n, [merkle.empty_leaf_hash(0)] * n
    tree = merkle.build_tree(leaves)
    if tree[0] != first.root_hash:
        raise IntegrityError("the rebuilt shares do not match the version's root hash")
    out = {}
    for sh in range(n):
        chain = {i: tree[i] for i in merkle.needed_hashes(sh, n)}
        fields = (first.seqnum, first.root_hash, first.iv, k, n, first.segsize, first.datalen)
        rebuilt = sdmf.SDMFShare(
            *fields, first.pubkey, first.signature, chain, [leaves[sh]], blocks[sh],
            first.enc_privkey,
        )  # fmt: skip
        out[sh] = rebuilt.pack()
    return out


async def _mdmf_shares(
    si: bytes, fingerprint: bytes, sources: list[SeenShare], best: bytes
) -> dict[int, bytes]:
    from veil.services.mutable.mdmf_files import MDMFFiles

    good: dict[int, tuple[StorageClient, mdmf.Meta, list[bytes]]] = {}
    for s in sources:
        if s.shnum in good:
            continue
        seen = await MDMFFiles._query_share(s.server, si, s.shnum, fingerprint)
        if seen.meta is not None and seen.meta.header.signed_prefix() == best:
            good[s.shnum] = (s.server, seen.meta, seen.tree)
    if not good:
        raise IntegrityError("no good share of the version to rebuild the others from")
    meta = next(iter(good.values()))[1]
    h, g = meta.header, meta.header.geometry
    if len(good) < g.k:
        raise IntegrityError("too few good shares of the version to rebuild the others")
    codec = make_codec(g.k, g.n)
    per_share: list[list[bytes]] = [[] for _ in range(g.n)]
    for seg in range(g.num_segments):
        length = mdmf.SALT + g.block_length(seg)
        got: dict[int, bytes] = {}
        for sh, (server, m, tree) in sorted(good.items()):
            if len(got) == g.k:
                break
            at = m.header.offsets[5] + g.block_offset(seg)
            try:
                raw = await asyncio.wait_for(server.mutable_read(si, sh, at, length), CALL_TIMEOUT)
                mdmf.check_block(tree, g, seg, raw)
            except (VeilError, TimeoutError):
                continue
            got[sh] = raw
        if len(got) < g.k:
            raise IntegrityError(f"segment {seg}: fewer than {g.k} good blocks")
        salt = next(iter(got.values()))[: mdmf.SALT]
        nums = sorted(got)
        pieces = codec.decode([got[i][mdmf.SALT :] for i in nums], nums)
        coded = codec.encode_segment(b"".join(bytes(p) for p in pieces))
        for sh in range(g.n):
            per_share[sh].append(salt + bytes(coded[sh]))
    trees = [merkle.build_tree([block_hash(b) for b in salted]) for salted in per_share]
    share_tree = merkle.build_tree([t[0] for t in trees])
    if share_tree[0] != h.root_hash:
        raise IntegrityError("the rebuilt shares do not match the version's root hash")
    out = {}
    for sh, blocks in enumerate(per_share):
        out[sh] = mdmf.build_share(
            seqnum=h.seqnum,
            root_hash=h.root_hash,
            geometry=g,
            enc_privkey=meta.enc_privkey,
            chain={i: share_tree[i] for i in merkle.needed_hashes(sh, g.n)},
            signature=meta.signature,
            pubkey=meta.pubkey,
            salt_blocks=blocks,
            block_tree=trees[sh],
        )
    return out


async def repair_same_version(
    files: MutableFiles,
    cap: mc.SSKWriteCap,
    check: MutableCheck,
    *,
    happy: int,
    lease_secrets: LeaseSecrets,
) -> int:
    """Write the best version's missing shares; returns how many were written."""
    if check.best is None:
        raise IntegrityError("no recoverable version to repair from")
    best = check.best
    si = check.results.storage_index
    sources = check.shares_of(best)
    build = _mdmf_shares if cap.mdmf else _sdmf_shares
    shares = await build(si, cap.fingerprint, sources, best)
    responding = set(check.results.servers_responding)
    ring = [s.server_id for s in files.broker.permuted(si) if s.server_id in responding]
    good_held: dict[str, set[int]] = {}
    for s in sources:
        good_held.setdefault(s.server.server_id, set()).add(s.shnum)
    n = len(shares)
    targets = choose_targets(ring, good_held, check.results.sharemap, n, min(happy, len(ring)))
    if not targets:
        raise UnhappinessError("no responding server can take the missing shares")
    there = {(s.server.server_id, s.shnum): s.checkstring for s in check.seen}
    wem = mc.write_enabler_master(cap.writekey)
    by_id = {s.server_id: s for s in files.broker.servers}

    async def write(sid: str, shnums: set[int]) -> int:
        server = by_id[sid]
        vectors = {}
        for sh in shnums:
            old = there.get((sid, sh))
            test = (0, len(old), old) if old is not None else MUST_NOT_EXIST
            vectors[sh] = TestWrite((test,), ((0, shares[sh]),), len(shares[sh]))
        renew, cancel = lease_secrets(si, server.lease_seed)
        try:
            result = await asyncio.wait_for(
                server.mutable_read_test_write(
                    si,
                    vectors,
                    [],
                    write_enabler=mc.write_enabler(wem, server.lease_seed),
                    renew_secret=renew,
                    cancel_secret=cancel,
                ),
                CALL_TIMEOUT,
            )
        except (VeilError, TimeoutError):
            return 0
        return len(vectors) if result.success else 0

    written = await asyncio.gather(*(write(sid, shs) for sid, shs in targets.items()))
    return sum(written)
