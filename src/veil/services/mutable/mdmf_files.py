"""MDMF mutable files: read by segment, publish, and update in place.

The server map reads each share's first 4000 bytes (header, keys, chain,
signature) and its block hash tree, and checks them before the share counts.
Reading then fetches only the segments asked for, from k shares, checking
every block against its share's tree. An in-place update re-encrypts only the
touched segments (fresh salts), splices their leaves into every share's block
hash tree, re-signs with seqnum + 1 and writes just those blocks and the
metadata, under the same test-and-write rules as any publish (the first share
of the base version first, see ``veil.services.mutable.files``), from one
server map, retried by ``veil.services.mutable.retry``. A share whose header
and tree fail to match is read again before it is called corrupt: a publish
may have fallen between the two reads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from veil.codec import make_codec
from veil.errors import (
    FormatError,
    IntegrityError,
    NotEnoughSharesError,
    VeilError,
)
from veil.formats import mdmf, merkle
from veil.formats import mutable_caps as mc
from veil.formats.crypto import ctr_cipher
from veil.formats.hashes import block_hash
from veil.services.interfaces import StorageClient
from veil.services.mutable.files import FIRST_READ, MutableFiles, _surprise, signing_key
from veil.services.mutable.retry import InProgress, Marker, retrying
from veil.services.mutable.server_map import READ_MARGIN

Change = bytes | Callable[[bytes], bytes]


@dataclass
class Seen:
    server: StorageClient
    shnum: int
    checkstring: bytes
    meta: mdmf.Meta | None  # None: present but not a good MDMF share
    tree: list[bytes]


@dataclass
class Version:
    shares: dict[int, Seen]

    @property
    def meta(self) -> mdmf.Meta:
        meta = next(iter(self.shares.values())).meta
        assert meta is not None
        return meta

    @property
    def geometry(self) -> mdmf.Geometry:
        return self.meta.header.geometry


class MDMFFiles:
    def __init__(self, files: MutableFiles) -> None:
        self.files = files

    async def _query(self, server: StorageClient, si: bytes, fp: bytes, out: list[Seen]) -> None:
        try:
            for shnum in sorted(await server.mutable_list_shares(si)):
                out.append(await self._query_share(server, si, shnum, fp))
        except VeilError:
            return

    @staticmethod
    async def _query_share(server: StorageClient, si: bytes, shnum: int, fp: bytes) -> Seen:
        for _ in range(3):
            raw = await server.mutable_read(si, shnum, 0, FIRST_READ)
            try:
                meta = mdmf.parse_meta(raw)
                _, _, _, _, _, _, bht_at, eof = meta.header.offsets
                tree_bytes = await server.mutable_read(si, shnum, bht_at, eof - bht_at)
                if len(tree_bytes) % 32 or not tree_bytes:
                    raise FormatError("MDMF block hash tree is truncated")
                tree = [tree_bytes[i : i + 32] for i in range(0, len(tree_bytes), 32)]
                mdmf.verify_meta(meta, shnum, tree, fp)
            except (FormatError, IntegrityError) as exc:
                if await server.mutable_read(si, shnum, 0, 41) != raw[:41]:
                    continue  # rewritten between the two reads: read it again
                await server.mutable_advise_corrupt(si, shnum, str(exc))
                return Seen(server, shnum, raw[:41], None, [])
            return Seen(server, shnum, raw[:41], meta, tree)
        return Seen(server, shnum, raw[:41], None, [])  # changing too fast to read

    async def server_map(
        self, si: bytes, fingerprint: bytes, servers: Sequence[StorageClient] | None = None
    ) -> list[Seen]:
        """Every share of every server (or of ``servers``), as a write needs."""
        seen: list[Seen] = []
        await self._ask(
            self.files.broker.servers if servers is None else servers, si, fingerprint, seen
        )
        return seen

    async def _ask(
        self, servers: Sequence[StorageClient], si: bytes, fingerprint: bytes, seen: list[Seen]
    ) -> None:
        async def bounded(server: StorageClient) -> None:
            try:
                await asyncio.wait_for(
                    self._query(server, si, fingerprint, seen), self.files.timeout
                )
            except TimeoutError:
                pass

        await asyncio.gather(*(bounded(s) for s in servers))

    async def read_map(self, si: bytes, fingerprint: bytes) -> list[Seen]:
        """For a read, as SDMF's ``read_map``: the first k + ``READ_MARGIN`` servers
        of the permuted ring, and the rest only when they hold no recoverable
        version or show a newer seqnum than the best one."""
        ring = self.files.broker.permuted(si)
        first = ring[: self.files.params.needed + READ_MARGIN]
        seen = await self.server_map(si, fingerprint, first)
        best = self.best(seen)
        newest = max((s.meta.header.seqnum for s in seen if s.meta is not None), default=0)
        if best is None or newest > best.meta.header.seqnum:
            await self._ask(ring[len(first) :], si, fingerprint, seen)
        return seen

    @staticmethod
    def best(seen: list[Seen]) -> Version | None:
        versions: dict[bytes, dict[int, Seen]] = {}
        for s in seen:
            if s.meta is not None:
                versions.setdefault(s.meta.header.signed_prefix(), {}).setdefault(s.shnum, s)
        good = [Version(v) for v in versions.values() if len(v) >= Version(v).geometry.k]
        if not good:
            return None
        return max(good, key=lambda v: (v.meta.header.seqnum, v.meta.header.root_hash))

    async def _version(self, read_cap: mc.SSKReadCap) -> tuple[list[Seen], Version]:
        seen = await self.read_map(read_cap.storage_index, read_cap.fingerprint)
        version = self.best(seen)
        if version is None:
            raise NotEnoughSharesError(
                f"not enough good shares of this MDMF file were found ({len(seen)} seen)"
            )
        return seen, version

    async def _same_version_everywhere(self, read_cap: mc.SSKReadCap, version: Version) -> Version:
        """``version`` with the shares of every server, not only the first asked."""
        seen = await self.server_map(read_cap.storage_index, read_cap.fingerprint)
        prefix = version.meta.header.signed_prefix()
        shares = {s.shnum: s for s in seen if s.meta and s.meta.header.signed_prefix() == prefix}
        return Version({**version.shares, **shares})

    async def _segment(self, si: bytes, version: Version, s: int, readkey: bytes) -> bytes:
        g = version.geometry
        length = mdmf.SALT + g.block_length(s)
        at = version.meta.header.offsets[5] + g.block_offset(s)
        blocks: dict[int, bytes] = {}
        for sh, seen in sorted(version.shares.items()):
            if len(blocks) == g.k:
                break
            try:
                raw = await seen.server.mutable_read(si, sh, at, length)
                mdmf.check_block(seen.tree, g, s, raw)
            except (VeilError, IntegrityError):
                continue
            blocks[sh] = raw
        if len(blocks) < g.k:
            raise NotEnoughSharesError(f"segment {s}: fewer than {g.k} good blocks")
        salt = next(iter(blocks.values()))[: mdmf.SALT]
        codec = make_codec(g.k, g.n, backend=self.files.codec_backend)
        pieces = codec.decode([b[mdmf.SALT :] for b in blocks.values()], list(blocks))
        return mdmf.decrypt_segment(pieces, salt, readkey, g.segment_length(s))

    async def stream(
        self, cap: mc.SSKWriteCap | mc.SSKReadCap, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        read_cap = cap.read_cap() if isinstance(cap, mc.SSKWriteCap) else cap
        _, version = await self._version(read_cap)
        g = version.geometry
        end = g.datalen if length is None else min(g.datalen, offset + length)
        if offset >= end:
            return
        widened = False
        for s in range(offset // g.segsize, (end - 1) // g.segsize + 1):
            try:
                data = await self._segment(read_cap.storage_index, version, s, read_cap.readkey)
            except NotEnoughSharesError:
                if widened:
                    raise
                # the read asked only the first servers of the ring: ask them all
                widened = True
                version = await self._same_version_everywhere(read_cap, version)
                data = await self._segment(read_cap.storage_index, version, s, read_cap.readkey)
            start = s * g.segsize
            yield data[max(0, offset - start) : end - start]

    async def read(self, cap: mc.SSKWriteCap | mc.SSKReadCap) -> bytes:
        return b"".join([chunk async for chunk in self.stream(cap)])

    # -- writing ---------------------------------------------------------------------

    async def create(self, data: bytes | Callable[[mc.SSKWriteCap], bytes]) -> mc.SSKWriteCap:
        """A new MDMF file; ``data`` may depend on its cap (directories do)."""
        key = await asyncio.to_thread(self.files.keygen)
        der, pub = _serialize(key)
        cap = mc.SSKWriteCap(
            mc.writekey_from_privkey(der), mc.fingerprint_from_pubkey(pub), mdmf=True
        )
        if callable(data):
            data = data(cap)
        p = self.files.params
        await self._publish(cap, key, der, data, 1, p.needed, p.total, [])
        return cap

    async def overwrite(self, cap: mc.SSKWriteCap, data: bytes) -> int:
        return await self.modify(cap, data)

    async def modify(self, cap: mc.SSKWriteCap, change: Change, *, what: str = "file") -> int:
        """Publish ``change`` (new contents, or a function of the current ones)
        from one server map, retrying under contention; returns the new seqnum."""
        return await retrying(lambda stale: self._modify_once(cap, change, stale), what=what)

    async def _writable(self, cap: mc.SSKWriteCap, stale: Marker) -> tuple[list[Seen], Version]:
        """The map and its best version, if no newer (unfinished) one is in it."""
        seen = await self.server_map(cap.read_cap().storage_index, cap.fingerprint)
        version = self.best(seen)
        if version is None:
            good = frozenset((s.server.server_id, s.shnum, s.checkstring) for s in seen if s.meta)
            if good and not good <= stale:
                raise InProgress(good)
            raise NotEnoughSharesError(
                f"not enough good shares of this MDMF file were found ({len(seen)} seen)"
            )
        seqnum = version.meta.header.seqnum
        newer = frozenset(
            (s.server.server_id, s.shnum, s.checkstring)
            for s in seen
            if s.meta and s.meta.header.seqnum > seqnum
        )
        if not newer <= stale:
            raise InProgress(newer)
        return seen, version

    async def _read_version(self, cap: mc.SSKWriteCap, version: Version) -> bytes:
        """The whole contents of ``version``; a surprise if it changes while read."""
        g = version.geometry
        segs = [await self._segment_of(cap, version, s) for s in range(g.num_segments)]
        return b"".join(segs)[: g.datalen]

    async def _segment_of(self, cap: mc.SSKWriteCap, version: Version, s: int) -> bytes:
        """Segment ``s`` of ``version``; a surprise if the version was replaced meanwhile."""
        si, readkey = cap.read_cap().storage_index, cap.read_cap().readkey
        try:
            return await self._segment(si, version, s, readkey)
        except NotEnoughSharesError:
            now = self.best(await self.server_map(si, cap.fingerprint))
            if now is not None and now.meta.header != version.meta.header:
                raise _surprise() from None
            raise

    async def _modify_once(self, cap: mc.SSKWriteCap, change: Change, stale: Marker) -> int:
        seen, version = await self._writable(cap, stale)
        data = change(await self._read_version(cap, version)) if callable(change) else change
        key, der = self._signing_key(cap, version)
        seqnum = max(s.meta.header.seqnum for s in seen if s.meta) + 1
        g = version.geometry
        await self._publish(cap, key, der, data, seqnum, g.k, g.n, seen, _base(version))
        return seqnum

    def _signing_key(
        self, cap: mc.SSKWriteCap, version: Version
    ) -> tuple[rsa.RSAPrivateKey, bytes]:
        return signing_key(cap, [s.meta.enc_privkey for s in version.shares.values() if s.meta])

    async def _publish(
        self,
        cap: mc.SSKWriteCap,
        key: rsa.RSAPrivateKey,
        der: bytes,
        data: bytes,
        seqnum: int,
        k: int,
        n: int,
        seen: list[Seen],
        base: list[tuple[StorageClient, int]] | None = None,
    ) -> None:
        readkey = mc.readkey_from_writekey(cap.writekey)
        g = mdmf.Geometry.for_length(len(data), k, n)
        codec = make_codec(k, n, backend=self.files.codec_backend)

        def encode() -> dict[int, list[tuple[int, bytes]]]:
            per_share: list[list[bytes]] = [[] for _ in range(n)]
            for s in range(g.num_segments):
                salt = os.urandom(mdmf.SALT)
                seg = data[s * g.segsize : s * g.segsize + g.segment_length(s)]
                blocks = codec.encode_segment(mdmf.encrypt_segment(seg, salt, readkey, g))
                for sh in range(n):
                    per_share[sh].append(salt + bytes(blocks[sh]))
            return self._shares(key, der, cap.writekey, seqnum, g, per_share)

        writes = await asyncio.to_thread(encode)
        si = mc.storage_index_from_readkey(readkey)
        old = [(s.server, s.shnum, s.checkstring) for s in seen]
        await self.files.place_and_write(si, cap.writekey, writes, k, n, old, base=base)

    @staticmethod
    def _shares(
        key: rsa.RSAPrivateKey,
        der: bytes,
        writekey: bytes,
        seqnum: int,
        g: mdmf.Geometry,
        per_share: list[list[bytes]],
    ) -> dict[int, list[tuple[int, bytes]]]:
        trees = [merkle.build_tree([block_hash(b) for b in blocks]) for blocks in per_share]
        share_tree = merkle.build_tree([t[0] for t in trees])
        root = share_tree[0]
        signature = mdmf.sign(key, seqnum, root, g)
        enc = ctr_cipher(writekey).update(der)
        pub = mdmf.public_der(key)
        out = {}
        for sh, blocks in enumerate(per_share):
            chain = {i: share_tree[i] for i in merkle.needed_hashes(sh, g.n)}
            share = mdmf.build_share(
                seqnum=seqnum,
                root_hash=root,
                geometry=g,
                enc_privkey=enc,
                chain=chain,
                signature=signature,
                pubkey=pub,
                salt_blocks=blocks,
                block_tree=trees[sh],
            )
            out[sh] = [(0, share)]
        return out

    async def update(self, cap: mc.SSKWriteCap, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``; only the touched segments are re-encoded
        when the file does not grow (else the whole file is republished)."""

        def splice(whole: bytes) -> bytes:
            gap = bytes(max(0, offset - len(whole)))
            return whole[:offset] + gap + data + whole[offset + len(data) :]

        return await retrying(lambda stale: self._update_once(cap, offset, data, splice, stale))

    async def _update_once(
        self,
        cap: mc.SSKWriteCap,
        offset: int,
        data: bytes,
        splice: Callable[[bytes], bytes],
        stale: Marker,
    ) -> int:
        seen, version = await self._writable(cap, stale)
        g = version.geometry
        holders = {sh: s for sh, s in version.shares.items()}
        if offset + len(data) > g.datalen or not data or len(holders) < g.n:
            return await self._modify_once(cap, splice, stale)
        key, _ = self._signing_key(cap, version)
        readkey = mc.readkey_from_writekey(cap.writekey)
        si = mc.storage_index_from_readkey(readkey)
        first, last = offset // g.segsize, (offset + len(data) - 1) // g.segsize
        codec = make_codec(g.k, g.n, backend=self.files.codec_backend)
        new_blocks: dict[int, list[bytes]] = {}
        for s in range(first, last + 1):
            old = await self._segment_of(cap, version, s)
            start = s * g.segsize
            lo, hi = max(offset, start) - start, min(offset + len(data), start + len(old)) - start
            seg = old[:lo] + data[start + lo - offset : start + hi - offset] + old[hi:]
            salt = os.urandom(mdmf.SALT)
            coded = codec.encode_segment(mdmf.encrypt_segment(seg, salt, readkey, g))
            new_blocks[s] = [salt + bytes(b) for b in coded]
        seqnum = max(s.meta.header.seqnum for s in seen if s.meta) + 1
        trees = []
        for sh in range(g.n):
            tree = list(holders[sh].tree)
            leaves = [tree[len(tree) // 2 + s] for s in range(g.num_segments)]
            for s, salted in new_blocks.items():
                leaves[s] = block_hash(salted[sh])
            trees.append(merkle.build_tree(leaves))
        share_tree = merkle.build_tree([t[0] for t in trees])
        root = share_tree[0]
        signature = mdmf.sign(key, seqnum, root, g)
        writes: dict[int, list[tuple[int, bytes]]] = {}
        h = version.meta.header
        for sh in range(g.n):
            chain = {i: share_tree[i] for i in merkle.needed_hashes(sh, g.n)}
            meta_bytes = mdmf.build_share(
                seqnum=seqnum,
                root_hash=root,
                geometry=g,
                enc_privkey=version.meta.enc_privkey,
                chain=chain,
                signature=signature,
                pubkey=version.meta.pubkey,
                salt_blocks=[],
                block_tree=[],
            )[: h.offsets[4]]
            header = bytearray(meta_bytes[: mdmf.HEADER.size])
            header[mdmf.PREFIX.size :] = mdmf.HEADER.pack(0, 0, b"", 0, 0, 0, 0, *h.offsets)[
                mdmf.PREFIX.size :
            ]
            ws = [(0, bytes(header) + meta_bytes[mdmf.HEADER.size :])]
            ws += [(h.offsets[5] + g.block_offset(s), b[sh]) for s, b in new_blocks.items()]
            ws.append((h.offsets[6], b"".join(trees[sh])))
            writes[sh] = ws
        previous = [(s.server, s.shnum, s.checkstring) for s in seen]
        await self.files.place_and_write(
            si, cap.writekey, writes, g.k, g.n, previous, new_shares=False, base=_base(version)
        )
        return seqnum


def _base(version: Version) -> list[tuple[StorageClient, int]]:
    return [(s.server, sh) for sh, s in version.shares.items()]


def _serialize(key: rsa.RSAPrivateKey) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return der, mdmf.public_der(key)
