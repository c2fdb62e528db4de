"""Check and verify a mutable file (SDMF or MDMF) from any of its caps.

Every server is asked for its shares of the slot; each share is read and
checked (key against the cap's fingerprint, signature, hash chain; SDMF
shares are small and always checked whole, MDMF blocks only with
``verify``). The versions found are counted as Tahoe's mutable checker counts
them: healthy means exactly one recoverable version, no unrecoverable one,
and all N shares of it good. ``add_lease`` renews (or adds) a lease on every
server holding a share, which needs no write authority.

Not here: putting missing shares back (``veil.services.checker.mutable_repair``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from veil.errors import IntegrityError, VeilError
from veil.formats import base32, mdmf
from veil.formats import mutable_caps as mc
from veil.services.checker.immutable import LeaseSecrets, renew_lease
from veil.services.checker.results import CheckResults
from veil.services.interfaces import StorageClient
from veil.services.mutable.files import MutableFiles

CALL_TIMEOUT = 30.0
AnySSK = mc.SSKWriteCap | mc.SSKReadCap | mc.SSKVerifyCap


@dataclass
class SeenShare:
    """One share as found: ``version`` is its signed prefix (None: corrupt)."""

    server: StorageClient
    shnum: int
    checkstring: bytes
    version: bytes | None
    seqnum: int
    k: int
    n: int


@dataclass
class MutableCheck:
    results: CheckResults
    seen: list[SeenShare] = field(default_factory=list)
    best: bytes | None = None  # the best recoverable version's signed prefix
    leases: int = 0
    mdmf: bool = False

    def shares_of(self, version: bytes) -> list[SeenShare]:
        return [s for s in self.seen if s.version == version]


def storage_index_of(cap: AnySSK) -> bytes:
    return cap.read_cap().storage_index if isinstance(cap, mc.SSKWriteCap) else cap.storage_index


async def _seen_on(
    files: MutableFiles, server: StorageClient, si: bytes, cap: AnySSK, verify: bool
) -> list[SeenShare]:
    """The shares of one server, each checked."""
    if cap.mdmf:
        found = []
        mdmf_files = files.mdmf()
        for shnum in sorted(await server.mutable_list_shares(si)):
            s = await mdmf_files._query_share(server, si, shnum, cap.fingerprint)
            if s.meta is not None and verify:
                try:
                    await _verify_mdmf_blocks(server, si, shnum, s.meta, s.tree)
                except IntegrityError as exc:
                    await server.mutable_advise_corrupt(si, shnum, str(exc))
                    s.meta = None
            if s.meta is None:
                found.append(SeenShare(server, shnum, s.checkstring, None, 0, 0, 0))
            else:
                h = s.meta.header
                g = h.geometry
                found.append(
                    SeenShare(server, shnum, s.checkstring, h.signed_prefix(), h.seqnum, g.k, g.n)
                )
        return found
    smap = await files.server_map(si, cap.fingerprint, [server])
    out = []
    for seen in smap.seen:
        sh = seen.share
        if sh is None:
            out.append(SeenShare(server, seen.shnum, seen.checkstring, None, 0, 0, 0))
        else:
            out.append(
                SeenShare(
                    server, seen.shnum, seen.checkstring, sh.signed_prefix(), sh.seqnum, sh.k, sh.n
                )
            )
    return out


async def _verify_mdmf_blocks(
    server: StorageClient, si: bytes, shnum: int, meta: mdmf.Meta, tree: list[bytes]
) -> None:
    g = meta.header.geometry
    data_at = meta.header.offsets[5]
    for s in range(g.num_segments):
        length = mdmf.SALT + g.block_length(s)
        raw = await server.mutable_read(si, shnum, data_at + g.block_offset(s), length)
        mdmf.check_block(tree, g, s, raw)


async def check_mutable(
    files: MutableFiles,
    cap: AnySSK,
    *,
    verify: bool = False,
    add_lease: LeaseSecrets | None = None,
) -> MutableCheck:
    si = storage_index_of(cap)
    out = MutableCheck(CheckResults(si, mutable=True), mdmf=cap.mdmf)
    res = out.results

    async def one(server: StorageClient) -> None:
        try:
            shares = await asyncio.wait_for(server.mutable_list_shares(si), CALL_TIMEOUT)
        except (VeilError, TimeoutError):
            return
        res.servers_responding.append(server.server_id)
        if not shares:
            return
        if add_lease is not None:
            out.leases += await renew_lease(server, si, add_lease)
        try:
            out.seen.extend(
                await asyncio.wait_for(_seen_on(files, server, si, cap, verify), CALL_TIMEOUT)
            )
        except (VeilError, TimeoutError):
            return

    await asyncio.gather(*(one(s) for s in files.broker.servers))
    _count(out, files.params.needed, files.params.total)
    return out


def _count(out: MutableCheck, default_k: int, default_n: int) -> None:
    res = out.results
    versions: dict[bytes, set[int]] = {}
    for s in out.seen:
        if s.version is None:
            res.corrupt.append((s.server.server_id, s.shnum))
        else:
            versions.setdefault(s.version, set()).add(s.shnum)
    res.corrupt.sort()

    def params(v: bytes) -> tuple[int, int, int]:
        s = next(x for x in out.seen if x.version == v)
        return s.k, s.n, s.seqnum

    good = [v for v, shs in versions.items() if len(shs) >= params(v)[0]]
    res.recoverable_versions = len(good)
    res.unrecoverable_versions = len(versions) - len(good)
    if good:
        out.best = max(good, key=lambda v: (params(v)[2], v))
        k, n, seqnum = params(out.best)
        res.needed, res.expected, res.seqnum = k, n, seqnum
        # the signed prefix: version byte, seqnum (8 bytes), root hash (32 bytes), ...
        res.version_name = f"seq{seqnum}-{base32.b2a(out.best[9:41])[:4]}"
        for s in out.shares_of(out.best):
            res.sharemap.setdefault(s.shnum, set()).add(s.server.server_id)
        res.wrong_shares = sum(1 for s in out.seen if s.version not in (None, out.best))
    else:
        res.needed, res.expected = default_k, default_n
    if res.unrecoverable_versions:
        res.problems.append("some versions are unrecoverable")
    if not good:
        res.problems.append("no versions are recoverable")
    if len(good) > 1:
        res.problems.append("multiple versions are recoverable")
    if good and res.shares_good < res.expected:
        res.problems.append(f"{res.shares_good} shares (enc {res.needed}-of-{res.expected})")
    if res.corrupt:
        res.problems.append(f"Corrupt Shares: {len(res.corrupt)}")
