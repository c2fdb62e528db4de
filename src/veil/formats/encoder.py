"""Sans-I/O encoder of one immutable (CHK) file (digest §3.2-3.6).

Feed it the plaintext segment by segment; it encrypts, hashes, pads and
erasure-codes each one and hands back the N blocks to store. ``finish`` then
gives the hash trees, the UEB and the read cap. Who reads the file and where
the blocks go is the caller's business (``veil.services.immutable.uploader``).

The erasure coder is passed in (anything with ``encode_segment``), so this
module stays free of codec back-ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from veil.formats.caps import CHKReadCap
from veil.formats.crypto import ctr_cipher
from veil.formats.hashes import CIPHERTEXT_TAG, TaggedHasher, block_hash, crypttext_segment_hash
from veil.formats.merkle import build_tree, tahoe_chain_order
from veil.formats.params import FileGeometry
from veil.formats.share_layout import ShareLayout, layout_for, pack_chain
from veil.formats.ueb import URIExtension, ueb_length


class SegmentCoder(Protocol):
    def encode_segment(self, segment: bytes | memoryview) -> Sequence[bytes | memoryview]: ...


@dataclass(frozen=True)
class EncodedSegment:
    segnum: int
    blocks: Sequence[bytes | memoryview]  # index = share number


@dataclass(frozen=True)
class EncodedFile:
    """What remains to be written once every segment is encoded."""

    cap: CHKReadCap
    ueb: URIExtension
    trailers: dict[int, bytes]  # share number -> bytes from layout.plaintext_tree to the end


class ImmutableEncoder:
    """Encodes one file; call ``encode_segment`` for 0..num_segments-1 in order."""

    def __init__(
        self, readkey: bytes, geometry: FileGeometry, coder: SegmentCoder, *, min_version: int = 1
    ) -> None:
        self.readkey = readkey
        self.geometry = geometry
        self.layout: ShareLayout = layout_for(geometry, min_version=min_version)
        self._coder = coder
        self._cipher = ctr_cipher(readkey)
        self._crypttext = TaggedHasher(CIPHERTEXT_TAG)
        self._segment_hashes: list[bytes] = []
        self._block_hashes: list[list[bytes]] = [[] for _ in range(geometry.total)]

    @property
    def allocated_size(self) -> int:
        return self.layout.allocated_size(ueb_length(self.geometry))

    def header(self) -> bytes:
        return self.layout.header()

    def encode_segment(self, plaintext: bytes | memoryview) -> EncodedSegment:
        """Encrypt, hash and code one plaintext segment (the tail may be short)."""
        segnum = len(self._segment_hashes)
        g = self.geometry
        if segnum >= g.num_segments or len(plaintext) != g.segment_length(segnum):
            raise ValueError(f"segment {segnum} has the wrong length {len(plaintext)}")
        crypttext = self._cipher.update(plaintext)
        self._crypttext.update(crypttext)
        self._segment_hashes.append(crypttext_segment_hash(crypttext))
        pad = g.block_length(segnum) * g.needed - len(crypttext)
        if pad:
            crypttext += b"\x00" * pad
        blocks = self._coder.encode_segment(crypttext)
        for shnum, block in enumerate(blocks):
            self._block_hashes[shnum].append(block_hash(block))
        return EncodedSegment(segnum, blocks)

    def finish(self) -> EncodedFile:
        g = self.geometry
        if len(self._segment_hashes) != g.num_segments:
            raise ValueError("not every segment was encoded")
        crypttext_tree = build_tree(self._segment_hashes)
        block_trees = [build_tree(hashes) for hashes in self._block_hashes]
        share_tree = build_tree([tree[0] for tree in block_trees])
        ueb = URIExtension(g, self._crypttext.digest(), crypttext_tree[0], share_tree[0])
        ueb_bytes = ueb.serialize()
        zero_tree = b"\x00" * (len(crypttext_tree) * 32)
        ct_bytes = b"".join(crypttext_tree)
        trailers: dict[int, bytes] = {}
        size_field = len(ueb_bytes).to_bytes(self.layout.ueb_length_size, "big")
        for shnum in range(g.total):
            wanted = tahoe_chain_order(shnum, g.total)
            chain = [(i, share_tree[i]) for i in wanted]
            parts = (zero_tree, ct_bytes, b"".join(block_trees[shnum]), pack_chain(chain))
            trailers[shnum] = b"".join(parts) + size_field + ueb_bytes
        cap = CHKReadCap(self.readkey, ueb.hash(), g.needed, g.total, g.size)
        return EncodedFile(cap, ueb, trailers)
