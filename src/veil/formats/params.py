"""Encoding parameters and the geometry of an immutable file (digest §3.1).

Everything here is arithmetic: how a file of a given size is cut into
segments, pieces and blocks for k-of-N coding, and how large each share is.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.errors import FormatError, UsageError

DEFAULT_MAX_SEGMENT_SIZE = 1024 * 1024
LIT_SIZE_THRESHOLD = 55  # files of at most this many bytes become URI:LIT: caps


def next_multiple(n: int, k: int) -> int:
    return ((n + k - 1) // k) * k


def div_ceil(n: int, d: int) -> int:
    return (n + d - 1) // d


def next_power_of_two(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


@dataclass(frozen=True)
class EncodingParameters:
    """``shares.needed`` (k), ``shares.happy`` and ``shares.total`` (N)."""

    needed: int = 3
    happy: int = 7
    total: int = 10
    max_segment_size: int = DEFAULT_MAX_SEGMENT_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.needed <= self.total <= 256:
            raise UsageError(
                f"shares.needed={self.needed} and shares.total={self.total} must satisfy "
                "1 <= needed <= total <= 256"
            )
        if not 1 <= self.happy <= self.total:
            raise UsageError(
                f"shares.happy={self.happy} must be between 1 and shares.total={self.total}"
            )
        if self.max_segment_size < 1:
            raise UsageError("the maximum segment size must be positive")


@dataclass(frozen=True)
class FileGeometry:
    """How a file of ``size`` bytes is segmented and coded k-of-N."""

    size: int
    needed: int
    total: int
    segment_size: int

    @classmethod
    def for_upload(cls, size: int, needed: int, total: int, max_segment_size: int) -> FileGeometry:
        """The effective geometry Tahoe's encoder uses for a new upload."""
        segsize = next_multiple(min(max_segment_size, size), needed)
        return cls(size, needed, total, segsize)

    def __post_init__(self) -> None:
        if self.size < 1 or self.segment_size < 1 or self.segment_size % self.needed:
            raise FormatError(
                f"impossible geometry: size={self.size} segment_size={self.segment_size} "
                f"k={self.needed}"
            )
        if self.segment_size > next_multiple(self.size, self.needed):
            raise FormatError("segment size larger than the file")

    @property
    def num_segments(self) -> int:
        return div_ceil(self.size, self.segment_size)

    @property
    def tail_size(self) -> int:
        return self.size % self.segment_size or self.segment_size

    @property
    def padded_tail_size(self) -> int:
        return next_multiple(self.tail_size, self.needed)

    @property
    def block_size(self) -> int:
        return self.segment_size // self.needed

    @property
    def tail_block_size(self) -> int:
        return self.padded_tail_size // self.needed

    @property
    def share_data_length(self) -> int:
        return (self.num_segments - 1) * self.block_size + self.tail_block_size

    def segment_length(self, segnum: int) -> int:
        """Unpadded ciphertext length of segment ``segnum``."""
        return self.tail_size if segnum == self.num_segments - 1 else self.segment_size

    def block_length(self, segnum: int) -> int:
        return self.tail_block_size if segnum == self.num_segments - 1 else self.block_size

    @property
    def codec_params(self) -> bytes:
        return b"%d-%d-%d" % (self.segment_size, self.needed, self.total)

    @property
    def tail_codec_params(self) -> bytes:
        return b"%d-%d-%d" % (self.padded_tail_size, self.needed, self.total)
