"""Sans-I/O checks and decoding for downloading an immutable file (digest §3.8).

``ShareValidator`` takes the bytes of one share's header and trailer, checks
them against the read cap (UEB hash → share hash chain → block hash tree,
and the crypttext hash tree), and then checks each block as it arrives.
``SegmentDecoder`` turns k checked blocks into a checked, decrypted segment.
Fetching the bytes is the downloader's business (``veil.services.immutable.downloader``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from veil.errors import IntegrityError
from veil.formats.caps import CHKReadCap, CHKVerifyCap
from veil.formats.crypto import ctr_cipher
from veil.formats.hashes import block_hash, crypttext_segment_hash
from veil.formats.merkle import check_chain, check_tree
from veil.formats.params import FileGeometry, next_power_of_two
from veil.formats.share_layout import (
    HEADER_READ_SIZE,
    ShareLayout,
    parse_header,
    unpack_chain,
    unpack_tree,
)
from veil.formats.ueb import MAX_UEB_LENGTH, URIExtension, parse_and_validate

# Bytes to ask for first: the header and, for small shares, everything else.
FIRST_READ_SIZE = 64 * 1024


class SegmentCodec(Protocol):
    def decode(
        self, blocks: Sequence[bytes | memoryview], share_numbers: Sequence[int]
    ) -> Sequence[bytes | memoryview]: ...


@dataclass(frozen=True)
class TrailerRange:
    offset: int
    length: int


def trailer_range(layout: ShareLayout) -> TrailerRange:
    """Where the hash trees, chain and UEB sit (the UEB length is an upper bound)."""
    end = layout.ueb + layout.ueb_length_size + MAX_UEB_LENGTH
    return TrailerRange(layout.crypttext_tree, end - layout.crypttext_tree)


class ShareValidator:
    """Checks one share (number ``shnum``) of the file named by ``cap``."""

    def __init__(self, cap: CHKReadCap | CHKVerifyCap, shnum: int, header: bytes) -> None:
        if len(header) < 36:
            raise IntegrityError(f"share {shnum} is too short")
        self.cap = cap
        self.shnum = shnum
        self.layout = parse_header(header[:HEADER_READ_SIZE])
        self.ueb: URIExtension | None = None
        self.crypttext_tree: list[bytes] = []
        self._block_leaves: list[bytes] = []

    @property
    def geometry(self) -> FileGeometry:
        if self.ueb is None:
            raise ValueError("share not validated yet")
        return self.ueb.geometry

    def validate_trailer(self, trailer: bytes) -> None:
        """Check the bytes from the crypttext tree to the end of the UEB."""
        lay = self.layout
        base = lay.crypttext_tree
        ueb_at = lay.ueb - base
        size_field = trailer[ueb_at : ueb_at + lay.ueb_length_size]
        if len(size_field) != lay.ueb_length_size:
            raise IntegrityError(f"share {self.shnum} is truncated before its UEB")
        ueb_len = int.from_bytes(size_field, "big")
        ueb_bytes = trailer[ueb_at + lay.ueb_length_size : ueb_at + lay.ueb_length_size + ueb_len]
        if ueb_len >= MAX_UEB_LENGTH or len(ueb_bytes) != ueb_len:
            raise IntegrityError(f"share {self.shnum} has a truncated or oversized UEB")
        cap = self.cap
        ueb, _ = parse_and_validate(
            ueb_bytes,
            expected_hash=cap.ueb_hash,
            size=cap.size,
            needed=cap.needed_shares,
            total=cap.total_shares,
        )
        g = ueb.geometry
        if self.shnum >= g.total:
            raise IntegrityError(f"share number {self.shnum} is out of range")
        if lay.data + g.share_data_length > lay.plaintext_tree:
            raise IntegrityError(f"share {self.shnum} layout is too small for its data")
        leaves = next_power_of_two(g.num_segments)
        tree_bytes = (2 * leaves - 1) * 32
        ct = unpack_tree(trailer[: lay.block_hashes - base])
        bh = unpack_tree(trailer[lay.block_hashes - base : lay.share_hashes - base])
        if len(ct) * 32 != tree_bytes or len(bh) * 32 != tree_bytes:
            raise IntegrityError(f"share {self.shnum} has hash trees of the wrong size")
        chain = unpack_chain(trailer[lay.share_hashes - base : ueb_at])
        # The chain's leaf (this share's block-tree root) must lead to the UEB's root.
        leaf = check_chain(ueb.share_root_hash, self.shnum, g.total, chain, f"share {self.shnum}")
        check_tree(bh, leaf, f"block hash tree of share {self.shnum}")
        check_tree(ct, ueb.crypttext_root_hash, "crypttext hash tree")
        self.ueb = ueb
        self.crypttext_tree = ct
        self._block_leaves = bh[leaves - 1 : leaves - 1 + g.num_segments]

    def block_offset(self, segnum: int) -> tuple[int, int]:
        """(offset in the share, length) of the block of segment ``segnum``."""
        g = self.geometry
        return self.layout.data + segnum * g.block_size, g.block_length(segnum)

    def check_block(self, segnum: int, block: bytes) -> None:
        if len(block) != self.geometry.block_length(segnum) or (
            block_hash(block) != self._block_leaves[segnum]
        ):
            raise IntegrityError(f"block {segnum} of share {self.shnum} is corrupt")


class SegmentDecoder:
    """Rebuilds, checks and decrypts segments from k checked blocks."""

    def __init__(self, readkey: bytes | None, validator: ShareValidator, codec: SegmentCodec):
        self._readkey = readkey
        self._geometry = validator.geometry
        self._leaves = validator.crypttext_tree[
            next_power_of_two(self._geometry.num_segments) - 1 :
        ]
        self._codec = codec

    def crypttext(self, segnum: int, blocks: Sequence[bytes], shnums: Sequence[int]) -> bytes:
        """Decode and check segment ``segnum``'s ciphertext (raises ``IntegrityError``)."""
        g = self._geometry
        pieces = self._codec.decode(blocks, shnums)
        crypttext = b"".join(pieces)[: g.segment_length(segnum)]
        if crypttext_segment_hash(crypttext) != self._leaves[segnum]:
            raise IntegrityError(f"segment {segnum} does not match the crypttext hash tree")
        return crypttext

    def plaintext(self, segnum: int, crypttext: bytes) -> bytes:
        if self._readkey is None:
            raise ValueError("a verify cap cannot decrypt")
        return ctr_cipher(self._readkey, segnum * self._geometry.segment_size).update(crypttext)
