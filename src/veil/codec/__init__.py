"""Erasure coding byte-identical to zfec, the coder Tahoe-LAFS uses (digest §3.3).

    make_codec(k, n)                    ISA-L when Debian's libisal2 loads, else zfec
    make_codec(k, n, backend="isal")    force a back-end ("isal" or "zfec")
    available_backends()                the back-ends that work here; "zfec" always

Every codec has ``encode(pieces)`` (k equal pieces → all n blocks, the first k
being the pieces themselves), ``encode_segment(segment)`` (split into k equal
pieces without copying, then encode) and ``decode(blocks, share_numbers)`` (any
k distinct blocks → the k pieces in order). Codecs and their tables are built
once per (k, n) and shared; encoding and decoding may run in worker threads.

Not for: segmentation, padding or hashing (``veil.formats.encoder`` /
``veil.formats.decoder`` do that and take a codec as a parameter).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from veil.codec.isal_codec import IsalCodec, load_error, load_library
from veil.codec.matrix import check_parameters
from veil.codec.zfec_codec import ZfecCodec
from veil.errors import UsageError

BACKENDS = ("isal", "zfec")


class ErasureCodec(Protocol):
    """k-of-n systematic erasure coding with zfec's exact output."""

    k: int
    n: int
    name: str

    def encode(self, pieces: Sequence[bytes | memoryview]) -> list[bytes | memoryview]: ...

    def encode_segment(self, segment: bytes | memoryview) -> list[bytes | memoryview]: ...

    def decode(
        self, blocks: Sequence[bytes | memoryview], share_numbers: Sequence[int]
    ) -> list[bytes]: ...


_codecs: dict[tuple[int, int, str], ErasureCodec] = {}
_codecs_lock = threading.Lock()


def available_backends() -> list[str]:
    """The back-ends usable here, fastest first; "zfec" is always among them."""
    return ["isal", "zfec"] if load_library() is not None else ["zfec"]


def make_codec(k: int, n: int, *, backend: str = "auto") -> ErasureCodec:
    """The shared codec for k-of-n on ``backend`` ("auto", "isal" or "zfec").

    Raises ``UsageError`` for impossible k/n, an unknown back-end, or "isal"
    when the ISA-L library cannot be loaded.
    """
    check_parameters(k, n)
    if backend == "auto":
        backend = available_backends()[0]
    elif backend not in BACKENDS:
        raise UsageError(
            f"unknown erasure coding back-end {backend!r}",
            hint="use auto, isal or zfec",
        )
    key = (k, n, backend)
    codec = _codecs.get(key)
    if codec is None:
        with _codecs_lock:
            codec = _codecs.get(key)
            if codec is None:
                codec = _build(k, n, backend)
                _codecs[key] = codec
    return codec


def _build(k: int, n: int, backend: str) -> ErasureCodec:
    if backend == "isal":
        if load_library() is None:
            raise UsageError(
                f"the ISA-L erasure coder cannot be loaded: {load_error()}",
                hint="install Debian's libisal2, or use the zfec back-end",
            )
        return IsalCodec(k, n)
    return ZfecCodec(k, n)


__all__ = ["BACKENDS", "ErasureCodec", "available_backends", "make_codec"]
