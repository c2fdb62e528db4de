"""The one place caps are rendered for people, and the scrubber behind it.

A cap is a secret: whoever reads it holds its authority, and a storage
operator who sees a few key characters can rebuild the rest. So messages,
logs, ``repr`` and ``str`` of cap objects never show a cap, only what a user
needs to tell caps apart: the kind and the first characters of the storage
index (which every server already knows)::

    URI:DIR2 (SI 3vq7x…)      URI:CHK (SI ab2cd…)      URI:LIT (12 bytes)

``describe`` renders a parsed cap, ``describe_text`` a cap as typed (also a
malformed one: then only its kind). ``scrub`` is defence in depth for any
text about to be shown: it replaces whatever looks like a cap (``URI:…``,
also ``ro.``/``imm.``-prefixed or URL-encoded) by its description, and drops
long base32 runs that could be key material (swissnums, keys). Printing a
cap on purpose (``put`` printing the new cap) uses ``to_string()``, never
this module. Not for parsing caps: see ``caps`` and ``mutable_caps``.
"""

from __future__ import annotations

import re
from typing import Any

from veil.formats import base32

SI_SHOWN = 5  # base32 characters of the storage index shown (25 of its 128 bits)
SERVER_ID_SHOWN = 9  # of a v0- server id (public keys, shown as server_id[:12])
_KIND_RE = re.compile(r"^(?:ro\.|imm\.)?(URI:[A-Za-z0-9-]{1,40})")
_CAP_RE = re.compile(
    r"(?:ro\.|imm\.)?URI(?::|%3A)[A-Za-z0-9-]+(?:(?::|%3A)[A-Za-z0-9_=-]*)*", re.IGNORECASE
)
# Base32 (and upper-case base32) runs standing alone: a key, a swissnum.
_RUN_RE = re.compile(r"(?<![A-Za-z0-9])(v0-)?([A-Za-z2-7]{16,})(?![A-Za-z0-9])")
_RUN_ALWAYS = 24  # so long a run is never a word; shorter ones go when they hold a digit
_FIELD_OF_KEY = 6  # a cap-like match is replaced when one of its fields is this long


def _file_kind(cap: Any) -> str:
    from veil.formats import caps
    from veil.formats import mutable_caps as mc

    if isinstance(cap, mc._SSKCap):
        return cap.prefix
    if isinstance(cap, caps.CHKReadCap):
        return "URI:CHK"
    if isinstance(cap, caps.CHKVerifyCap):
        return "URI:CHK-Verifier"
    if isinstance(cap, caps.LiteralCap):
        return "URI:LIT"
    return kind_of_text(getattr(cap, "text", ""))


def kind(cap: Any) -> str:
    """``URI:DIR2-RO``, ``URI:CHK``, …: what sort of cap this is, nothing secret."""
    from veil.formats import mutable_caps as mc

    if isinstance(cap, mc.DirCap):
        file_kind = _file_kind(cap.file) + ":"
        for dir_prefix, file_prefix in mc._DIR_PREFIXES.items():
            if file_kind == file_prefix:
                return dir_prefix[:-1]
        return "URI:DIR2"
    return _file_kind(cap)


def storage_index(cap: Any) -> bytes | None:
    """The storage index a cap names on the grid (None for LIT and unknown caps)."""
    from veil.formats import caps
    from veil.formats import mutable_caps as mc

    if isinstance(cap, mc.DirCap):
        cap = cap.file
    if isinstance(cap, mc.SSKWriteCap):
        return cap.read_cap().storage_index
    if isinstance(cap, mc.SSKReadCap | mc.SSKVerifyCap | caps.CHKReadCap | caps.CHKVerifyCap):
        return cap.storage_index
    return None


def describe(cap: Any) -> str:
    """A cap for people: its kind and a short storage-index prefix."""
    from veil.formats import caps
    from veil.formats import mutable_caps as mc

    what = kind(cap)
    si = storage_index(cap)
    if si is not None:
        return f"{what} (SI {base32.b2a(si)[:SI_SHOWN]}…)"
    inner = cap.file if isinstance(cap, mc.DirCap) else cap
    if isinstance(inner, caps.LiteralCap):
        return f"{what} ({len(inner.data)} bytes)"
    return what


def kind_of_text(text: str) -> str:
    """The kind of a cap string that may not parse (``URI:CHK``), or ``a cap``."""
    m = _KIND_RE.match(text.strip())
    return m[1] if m else "an unrecognised cap"


def describe_text(text: str) -> str:
    """A cap string as typed, for people: parsed if possible, else its kind only."""
    from veil.formats.mutable_caps import parse_any

    try:
        return describe(parse_any(text.replace("%3A", ":").replace("%3a", ":")))
    except Exception:  # describing must never fail: fall back to the kind
        return kind_of_text(text)


def _cap_match(m: re.Match[str]) -> str:
    fields = re.split(r":|%3A", m[0], flags=re.IGNORECASE)[2:]
    if not any(len(f) >= _FIELD_OF_KEY for f in fields):
        return m[0]  # an example such as URI:CHK:…:…:3:10:12345 holds no key
    return describe_text(m[0])


def _run_match(m: re.Match[str]) -> str:
    run = m[2]
    if len(run) < _RUN_ALWAYS and not any(c in "234567" for c in run):
        return m[0]  # a long word, not key material
    if m[1]:
        return m[1] + run[:SERVER_ID_SHOWN] + "…"  # a server id (a public key): its short form
    return "…"


def scrub(text: str) -> str:
    """``text`` with every cap described and every key-like base32 run removed."""
    if not text:
        return text
    return _RUN_RE.sub(_run_match, _CAP_RE.sub(_cap_match, text))
