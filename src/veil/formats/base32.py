"""Tahoe-LAFS base32: RFC 4648 bit packing, lower case, no padding.

Used for caps, storage indexes, tubids and seeds (digest §1.1). Decoding is
strict: only lower-case alphabet characters, and only *canonical* encodings
(the unused low bits of the last character must be zero), as Tahoe's cap
regexes require.
"""

from __future__ import annotations

import base64
import re

from veil.errors import FormatError

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_VALID = re.compile(r"^[a-z2-7]*$")


def b2a(data: bytes) -> str:
    """Encode bytes as Tahoe base32 text."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def encoded_length(nbytes: int) -> int:
    """Number of base32 characters for ``nbytes`` bytes."""
    return (nbytes * 8 + 4) // 5


def is_canonical(text: str) -> bool:
    """True if ``text`` is a canonical Tahoe base32 string."""
    if not _VALID.match(text):
        return False
    rem = (len(text) * 5) % 8
    if rem >= 5:  # a character that carries no whole bit of a byte: impossible length
        return False
    if not text or rem == 0:
        return True
    return (ALPHABET.index(text[-1]) & ((1 << rem) - 1)) == 0


_AS_DIGITS = str.maketrans(ALPHABET, "0123456789abcdefghijklmnopqrstuv")  # int(..., 32)


def a2b(text: str) -> bytes:
    """Decode canonical Tahoe base32 text; raise ``FormatError`` otherwise.

    As one integer in base 32 (the standard library's decoder is a Python loop,
    a tenth of a server's time on small requests)."""
    if not is_canonical(text):
        raise FormatError(f"not canonical base32 ({len(text)} characters)")  # may be a key
    if not text:
        return b""
    bits = len(text) * 5
    return (int(text.translate(_AS_DIGITS), 32) >> (bits % 8)).to_bytes(bits // 8, "big")
