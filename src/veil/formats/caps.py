"""Capability strings for immutable files (digest §1).

``parse_cap`` follows Tahoe's ``uri.from_string``: it never raises, and any
text it cannot parse (an unknown prefix, or a known one with a malformed or
non-canonical body) becomes ``UnknownCap``, so directories holding caps from
newer versions keep working. ``parse_read_cap`` is for text a user typed: it
raises ``CapabilityError`` saying what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from veil.errors import CapabilityError, FormatError
from veil.formats import base32
from veil.formats.hashes import storage_index_from_readkey

_B32_128 = r"[a-z2-7]{25}[aqiyemu4]"
_B32_256 = r"[a-z2-7]{51}[aq]"
_NUM = r"[0-9]+"
_CHK_RE = re.compile(rf"^URI:CHK:({_B32_128}):({_B32_256}):({_NUM}):({_NUM}):({_NUM})$")
# Tahoe's verifier regex has no trailing anchor; trailing junk is accepted.
_CHK_VERIFIER_RE = re.compile(
    rf"^URI:CHK-Verifier:({_B32_128}):({_B32_256}):({_NUM}):({_NUM}):({_NUM})"
)
_LIT_RE = re.compile(r"^URI:LIT:([a-z2-7]*)$")


@dataclass(frozen=True)
class CHKVerifyCap:
    """``URI:CHK-Verifier:``: check and repair without the power to decrypt."""

    storage_index: bytes
    ueb_hash: bytes
    needed_shares: int
    total_shares: int
    size: int

    def to_string(self) -> str:
        return (
            f"URI:CHK-Verifier:{base32.b2a(self.storage_index)}:{base32.b2a(self.ueb_hash)}"
            f":{self.needed_shares}:{self.total_shares}:{self.size}"
        )

    def __str__(self) -> str:  # for people: never the cap itself (see cap_display)
        return _describe(self)

    def __repr__(self) -> str:
        return f"CHKVerifyCap({_describe(self)}, size={self.size})"


@dataclass(frozen=True)
class CHKReadCap:
    """``URI:CHK:``: the read capability of an immutable file."""

    readkey: bytes
    ueb_hash: bytes
    needed_shares: int
    total_shares: int
    size: int

    @property
    def storage_index(self) -> bytes:
        return storage_index_from_readkey(self.readkey)

    def verify_cap(self) -> CHKVerifyCap:
        return CHKVerifyCap(
            self.storage_index, self.ueb_hash, self.needed_shares, self.total_shares, self.size
        )

    def to_string(self) -> str:
        return (
            f"URI:CHK:{base32.b2a(self.readkey)}:{base32.b2a(self.ueb_hash)}"
            f":{self.needed_shares}:{self.total_shares}:{self.size}"
        )

    def __str__(self) -> str:  # the read key is a secret: never in a message or log
        return _describe(self)

    def __repr__(self) -> str:
        return f"CHKReadCap({_describe(self)}, size={self.size})"


@dataclass(frozen=True)
class LiteralCap:
    """``URI:LIT:``: a small file held inside the cap itself."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def to_string(self) -> str:
        return "URI:LIT:" + base32.b2a(self.data)

    def __str__(self) -> str:  # the data may be a secret too
        return _describe(self)

    def __repr__(self) -> str:
        return f"LiteralCap(size={len(self.data)})"


@dataclass(frozen=True)
class UnknownCap:
    """A cap of a kind this version does not understand; kept verbatim."""

    text: str

    def to_string(self) -> str:
        return self.text

    def __str__(self) -> str:  # may be a cap of a newer kind: as secret as any
        return _describe(self)

    def __repr__(self) -> str:
        return f"UnknownCap({_describe(self)})"


def _describe(cap: object) -> str:
    from veil.formats.cap_display import describe

    return describe(cap)


Cap = CHKReadCap | CHKVerifyCap | LiteralCap | UnknownCap

_KNOWN_PREFIXES = ("URI:CHK:", "URI:CHK-Verifier:", "URI:LIT:")


MAX_DIGITS = 20  # 2**64 has 20 digits; int() refuses over 4300 (a traceback once)


def _numbers(k: str, n: str, size: str) -> tuple[int, int, int]:
    if max(len(k), len(n), len(size)) > MAX_DIGITS:
        raise FormatError("a number in the cap is impossibly long")
    kk, nn, ss = int(k), int(n), int(size)
    if not 1 <= kk <= nn <= 256:
        raise FormatError(f"impossible share counts {kk}-of-{nn}")
    return kk, nn, ss


def parse_cap(text: str) -> Cap:
    """Parse a capability string. See the module docstring for the contract."""
    text = text.strip()
    try:
        if m := _CHK_RE.match(text):
            k, n, size = _numbers(m[3], m[4], m[5])
            return CHKReadCap(base32.a2b(m[1]), base32.a2b(m[2]), k, n, size)
        if m := _CHK_VERIFIER_RE.match(text):
            k, n, size = _numbers(m[3], m[4], m[5])
            return CHKVerifyCap(base32.a2b(m[1]), base32.a2b(m[2]), k, n, size)
        if m := _LIT_RE.match(text):
            return LiteralCap(base32.a2b(m[1]))
    except FormatError:
        pass
    return UnknownCap(text)


def parse_read_cap(text: str) -> CHKReadCap | LiteralCap:
    """Parse a cap typed by a user that must be an immutable *read* cap."""
    from veil.formats.cap_display import kind_of_text

    cap = parse_cap(text)
    if isinstance(cap, UnknownCap) and cap.text.startswith(_KNOWN_PREFIXES):
        raise CapabilityError(
            f"malformed capability ({kind_of_text(cap.text)})",
            hint="caps are long strings like URI:CHK:…:…:3:10:12345; copy the whole line",
        )
    if isinstance(cap, CHKReadCap | LiteralCap):
        return cap
    if isinstance(cap, CHKVerifyCap):
        raise CapabilityError("a verify cap cannot read a file; use the URI:CHK: read cap")
    raise CapabilityError(
        f"not a capability veil can read ({kind_of_text(text)})",
        hint="immutable read caps start with URI:CHK: or URI:LIT:",
    )
