"""The bytes of one immutable share, as the client writes them (digest §3.6).

    v1 header (36 bytes)        v2 header (68 bytes)
    0x00 version = 1            0x00 version = 2 (4 bytes)
    0x04 block_size             0x04 block_size           (8 bytes each below)
    0x08 share_data_length      0x0c share_data_length
    0x0c data offset            0x14 data offset
    0x10 plaintext tree offset  0x1c plaintext tree offset
    0x14 crypttext tree offset  0x24 crypttext tree offset
    0x18 block hashes offset    0x2c block hashes offset
    0x1c share hashes offset    0x34 share hashes offset
    0x20 UEB offset             0x3c UEB offset

Then: blocks | zero plaintext tree | crypttext tree | block hash tree |
share hash chain (2-byte index + 32-byte hash each) | UEB length | UEB.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from veil.errors import IntegrityError
from veil.formats.merkle import needed_hashes, tree_node_count
from veil.formats.params import FileGeometry

HEADER_READ_SIZE = 0x44  # enough for either header version
_V1 = struct.Struct(">LLLLLLLLL")
_V2 = struct.Struct(">LQQQQQQQQ")
HASH_SIZE = 32
CHAIN_ENTRY = struct.Struct(">H32s")


@dataclass(frozen=True)
class ShareLayout:
    """Offsets of every field in a share; all relative to the share's start."""

    version: int
    block_size: int
    share_data_length: int
    data: int
    plaintext_tree: int
    crypttext_tree: int
    block_hashes: int
    share_hashes: int
    ueb: int

    @property
    def ueb_length_size(self) -> int:
        return 4 if self.version == 1 else 8

    def header(self) -> bytes:
        packer = _V1 if self.version == 1 else _V2
        return packer.pack(
            self.version,
            self.block_size,
            self.share_data_length,
            self.data,
            self.plaintext_tree,
            self.crypttext_tree,
            self.block_hashes,
            self.share_hashes,
            self.ueb,
        )

    def allocated_size(self, ueb_len: int) -> int:
        return self.ueb + self.ueb_length_size + ueb_len


def num_share_hashes(total_shares: int) -> int:
    return len(needed_hashes(0, total_shares, include_leaf=True))


def layout_for(geometry: FileGeometry, *, min_version: int = 1) -> ShareLayout:
    """The layout a Tahoe 1.20 client writes: v1 unless a field needs 64 bits.

    ``min_version=2`` forces the v2 layout (Tahoe readers accept both).
    """
    tree = tree_node_count(geometry.num_segments) * HASH_SIZE
    chain = num_share_hashes(geometry.total) * CHAIN_ENTRY.size
    for version, header in ((1, _V1.size), (2, _V2.size)):
        if version < min_version:
            continue
        data = header
        pt = data + geometry.share_data_length
        ct = pt + tree
        bh = ct + tree
        sh = bh + tree
        ueb = sh + chain
        layout = ShareLayout(
            version, geometry.block_size, geometry.share_data_length, data, pt, ct, bh, sh, ueb
        )
        if version == 2 or (
            geometry.block_size < 2**32 and geometry.share_data_length < 2**32 and ueb < 2**32
        ):
            return layout
    raise AssertionError("unreachable")


def parse_header(data: bytes) -> ShareLayout:
    """Parse the first bytes of a share (at least 0x24 for v1, 0x44 for v2)."""
    if len(data) < 4:
        raise IntegrityError("share is too short to hold a header")
    (version,) = struct.unpack(">L", data[:4])
    if version == 1 and len(data) >= _V1.size:
        fields = _V1.unpack(data[: _V1.size])
    elif version == 2 and len(data) >= _V2.size:
        fields = _V2.unpack(data[: _V2.size])
    else:
        raise IntegrityError(f"unknown share layout version {version}")
    layout = ShareLayout(*fields)
    offsets = (
        layout.data,
        layout.plaintext_tree,
        layout.crypttext_tree,
        layout.block_hashes,
        layout.share_hashes,
        layout.ueb,
    )
    if list(offsets) != sorted(offsets) or offsets[0] < (36 if version == 1 else 68):
        raise IntegrityError("share header offsets are out of order")
    return layout


def pack_chain(entries: Sequence[tuple[int, bytes]]) -> bytes:
    return b"".join(CHAIN_ENTRY.pack(i, h) for i, h in entries)


def unpack_chain(data: bytes) -> dict[int, bytes]:
    if len(data) % CHAIN_ENTRY.size:
        raise IntegrityError("share hash chain has a partial entry")
    return {i: h for i, h in CHAIN_ENTRY.iter_unpack(data)}


def unpack_tree(data: bytes) -> list[bytes]:
    if len(data) % HASH_SIZE:
        raise IntegrityError("hash tree has a partial node")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
