"""Netstrings as Tahoe uses them: ``b"3:abc,"``."""

from __future__ import annotations

from veil.errors import FormatError


def netstring(data: bytes) -> bytes:
    """Wrap ``data`` as a netstring."""
    return b"%d:%s," % (len(data), data)


def split_netstrings(data: bytes, count: int) -> list[bytes]:
    """Parse exactly ``count`` netstrings that fill ``data``."""
    out: list[bytes] = []
    pos = 0
    for _ in range(count):
        colon = data.find(b":", pos)
        if colon < 0 or colon - pos > 20 or not data[pos:colon].isdigit():
            raise FormatError("malformed netstring length")
        length = int(data[pos:colon])
        end = colon + 1 + length
        if end >= len(data) or data[end : end + 1] != b",":
            raise FormatError("malformed netstring body")
        out.append(data[colon + 1 : end])
        pos = end + 1
    if pos != len(data):
        raise FormatError("trailing bytes after netstrings")
    return out
