"""Erasure coding through the zfec package: the reference, always available.

Tahoe-LAFS itself encodes with ``zfec.Encoder(k, n)``; this wrapper only adds
the shared input checks (``UsageError`` instead of zfec's own exceptions) and
the ``ErasureCodec`` shape. zfec reads bytes, bytearrays and memoryview slices
in place, so nothing is copied on the way in.

Not for: speed (``veil.codec.isal_codec`` is several times faster).
"""

from __future__ import annotations

from collections.abc import Sequence

import zfec

from veil.codec.matrix import (
    check_blocks,
    check_parameters,
    check_share_numbers,
    segment_piece_size,
)

Buffer = bytes | memoryview


class ZfecCodec:
    """k-of-n erasure coding through ``zfec.Encoder`` / ``zfec.Decoder``."""

    name = "zfec"

    def __init__(self, k: int, n: int) -> None:
        check_parameters(k, n)
        self.k, self.n = k, n
        self._encoder = zfec.Encoder(k, n)
        self._decoder = zfec.Decoder(k, n)
        self._check_numbers = list(range(k, n))

    def encode(self, pieces: Sequence[Buffer]) -> list[Buffer]:
        """All n blocks; the first k are ``pieces`` themselves (not copied)."""
        size = check_blocks(self.k, pieces, "pieces")
        if self.k == self.n:
            return list(pieces)
        if size == 0:
            return [*pieces, *([b""] * (self.n - self.k))]
        checks: list[bytes] = self._encoder.encode(list(pieces), self._check_numbers)
        return [*pieces, *checks]

    def encode_segment(self, segment: bytes | memoryview) -> list[Buffer]:
        """Split ``segment`` into k equal pieces (memoryview slices) and encode them."""
        size = segment_piece_size(self.k, segment)
        view = memoryview(segment)
        return self.encode([view[i * size : (i + 1) * size] for i in range(self.k)])

    def decode(self, blocks: Sequence[Buffer], share_numbers: Sequence[int]) -> list[bytes]:
        """The k primary pieces, in order, from any k distinct blocks and their numbers."""
        check_share_numbers(self.k, self.n, share_numbers)
        size = check_blocks(self.k, blocks, "blocks")
        if size == 0:
            return [b""] * self.k
        if all(s < self.k for s in share_numbers):
            pairs = sorted(zip(share_numbers, blocks, strict=True), key=lambda p: p[0])
            out: Sequence[Buffer] = [b for _, b in pairs]
        else:
            out = self._decoder.decode(list(blocks), list(share_numbers))
        return [b if isinstance(b, bytes) else bytes(b) for b in out]
