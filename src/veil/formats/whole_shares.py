"""Small immutable files as whole shares in memory: encode all, check and decode all.

For files whose shares fit in one request (veil's batch extension,
``veil.formats.wire_batch``): the encoder's output is assembled into complete
share bytes (header, blocks, trailer), exactly what the streaming uploader
writes, and a download checks complete shares against the read cap before
decoding. The streaming paths (``veil.services.immutable.uploader`` / ``downloader``)
stay the way for everything larger.
"""

from __future__ import annotations

from collections.abc import Mapping

from veil.errors import IntegrityError
from veil.formats.caps import CHKReadCap
from veil.formats.decoder import SegmentCodec, SegmentDecoder, ShareValidator
from veil.formats.encoder import ImmutableEncoder, SegmentCoder
from veil.formats.params import FileGeometry


def encode_whole(
    readkey: bytes, data: bytes, geometry: FileGeometry, coder: SegmentCoder
) -> tuple[CHKReadCap, dict[int, bytes], int]:
    """(cap, every share's complete bytes, allocated size) for ``data``."""
    enc = ImmutableEncoder(readkey, geometry, coder)
    header = enc.header()
    parts: dict[int, list[bytes]] = {sh: [header] for sh in range(geometry.total)}
    for segnum in range(geometry.num_segments):
        start = segnum * geometry.segment_size
        seg = enc.encode_segment(data[start : start + geometry.segment_length(segnum)])
        for shnum, block in enumerate(seg.blocks):
            parts[shnum].append(bytes(block))
    done = enc.finish()
    shares = {}
    for shnum, pieces in parts.items():
        pieces.append(done.trailers[shnum])
        shares[shnum] = b"".join(pieces)
    return done.cap, shares, enc.allocated_size


def check_whole_share(cap: CHKReadCap, shnum: int, share: bytes) -> ShareValidator:
    """A validator for a complete share whose trailer and every block check out."""
    validator = ShareValidator(cap, shnum, share)
    lay = validator.layout
    validator.validate_trailer(share[lay.crypttext_tree :])
    for segnum in range(validator.geometry.num_segments):
        offset, length = validator.block_offset(segnum)
        block = share[offset : offset + length]
        validator.check_block(segnum, block)
    return validator


def decode_whole(
    cap: CHKReadCap, checked: Mapping[int, tuple[ShareValidator, bytes]], codec: SegmentCodec
) -> bytes:
    """The plaintext from at least k checked shares (``check_whole_share``)."""
    if len(checked) < cap.needed_shares:
        raise IntegrityError(f"{len(checked)} good shares, {cap.needed_shares} needed")
    use = sorted(checked)[: cap.needed_shares]
    first = checked[use[0]][0]
    decoder = SegmentDecoder(cap.readkey, first, codec)
    out = []
    for segnum in range(first.geometry.num_segments):
        blocks = []
        for shnum in use:
            validator, share = checked[shnum]
            offset, length = validator.block_offset(segnum)
            blocks.append(share[offset : offset + length])
        out.append(decoder.plaintext(segnum, decoder.crypttext(segnum, blocks, use)))
    return b"".join(out)
