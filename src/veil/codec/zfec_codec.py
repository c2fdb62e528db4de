"""Erasure coding through the zfec package (the reference; always available)."""

from __future__ import annotations

from collections.abc import Sequence

import zfec

from veil.codec.matrix import check_parameters, validate_share_numbers


class ZfecCodec:
    name = "zfec"

    def __init__(self, k: int, n: int) -> None:
        check_parameters(k, n)
        self.k, self.n = k, n
        self._encoder = zfec.Encoder(k, n)
        self._decoder = zfec.Decoder(k, n)

    def encode(self, pieces: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
        if len(pieces) != self.k:
            raise ValueError(f"expected {self.k} pieces")
        if self.k == self.n:
            return list(pieces)
        checks = self._encoder.encode([bytes(p) for p in pieces], list(range(self.k, self.n)))
        return [*pieces, *checks]

    def encode_segment(self, segment: bytes | memoryview) -> list[bytes | memoryview]:
        size = len(segment) // self.k
        if size * self.k != len(segment):
            raise ValueError("segment length must be a multiple of k")
        view = memoryview(segment)
        return self.encode([view[i * size : (i + 1) * size] for i in range(self.k)])

    def decode(
        self, blocks: Sequence[bytes | memoryview], share_numbers: Sequence[int]
    ) -> list[bytes]:
        validate_share_numbers(self.k, self.n, share_numbers)
        if list(share_numbers) == list(range(self.k)):
            return [bytes(b) for b in blocks]
        pairs = sorted(zip(share_numbers, blocks, strict=True), key=lambda p: p[0])
        out = self._decoder.decode([bytes(b) for _, b in pairs], [s for s, _ in pairs])
        return [bytes(p) for p in out]
