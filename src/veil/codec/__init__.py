"""Erasure coding byte-identical to zfec, the coder Tahoe-LAFS uses.

    make_codec(k, n)            ISA-L when Debian's libisal2 loads, else zfec
    make_codec(k, n, backend=)  "isal" or "zfec" to force one

Every codec has ``encode(pieces)``, ``encode_segment(segment)`` (split into k
equal pieces, return all n blocks; the first k are the pieces) and
``decode(blocks, share_numbers)`` (any k distinct blocks → the k pieces).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

from veil.codec.isal_codec import IsalCodec, load_library
from veil.codec.zfec_codec import ZfecCodec
from veil.errors import UsageError


class ErasureCodec(Protocol):
    k: int
    n: int
    name: str

    def encode(self, pieces: Sequence[bytes | memoryview]) -> list[bytes | memoryview]: ...

    def encode_segment(self, segment: bytes | memoryview) -> list[bytes | memoryview]: ...

    def decode(
        self, blocks: Sequence[bytes | memoryview], share_numbers: Sequence[int]
    ) -> list[bytes]: ...


def available_backends() -> list[str]:
    return ["isal", "zfec"] if load_library() is not None else ["zfec"]


@lru_cache(maxsize=64)
def make_codec(k: int, n: int, *, backend: str = "auto") -> ErasureCodec:
    """A (cached) codec for k-of-n; see the module docstring."""
    if backend == "auto":
        backend = available_backends()[0]
    if backend == "isal":
        if load_library() is None:
            raise UsageError("the ISA-L erasure coder is not installed (Debian: libisal2)")
        return IsalCodec(k, n)
    if backend == "zfec":
        return ZfecCodec(k, n)
    raise UsageError(f"unknown erasure coding backend {backend!r}; use isal or zfec")


__all__ = ["ErasureCodec", "available_backends", "make_codec"]
