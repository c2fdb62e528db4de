"""The URI extension block (UEB) of an immutable file (digest §3.5).

Serialized as ``key:ns(value)`` entries sorted by key. The hash of the
serialized block is in the read cap, so a reader checks it before trusting any
field, then checks every present field against the cap and the geometry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from veil.errors import FormatError, IntegrityError
from veil.formats.hashes import ueb_hash
from veil.formats.netstring import netstring
from veil.formats.params import FileGeometry

MAX_UEB_LENGTH = 2000
_KEY = re.compile(rb"^[a-zA-Z_\-]+$")
_HASH_FIELDS = ("crypttext_hash", "crypttext_root_hash", "share_root_hash")


def pack(fields: dict[str, bytes]) -> bytes:
    out = []
    for key in sorted(fields):
        kb = key.encode("ascii")
        if not _KEY.match(kb):
            raise ValueError(f"bad UEB key {key!r}")
        out.append(kb + b":" + netstring(fields[key]))
    return b"".join(out)


def unpack(data: bytes) -> dict[str, bytes]:
    """Parse a serialized UEB; raise ``IntegrityError`` on malformed bytes."""
    fields: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        colon = data.find(b":", pos)
        key = data[pos:colon]
        if colon < 0 or not _KEY.match(key):
            raise IntegrityError("URI extension block: malformed key")
        lcolon = data.find(b":", colon + 1)
        digits = data[colon + 1 : lcolon]
        if lcolon < 0 or not digits.isdigit() or len(digits) > 6:
            raise IntegrityError("URI extension block: malformed length")
        end = lcolon + 1 + int(digits)
        if data[end : end + 1] != b",":
            raise IntegrityError("URI extension block: malformed value")
        fields[key.decode("ascii")] = data[lcolon + 1 : end]
        pos = end + 1
    return fields


@dataclass(frozen=True)
class URIExtension:
    """The fields of a UEB that veil writes and reads."""

    geometry: FileGeometry
    crypttext_hash: bytes
    crypttext_root_hash: bytes
    share_root_hash: bytes

    def serialize(self) -> bytes:
        g = self.geometry
        return pack(
            {
                "codec_name": b"crs",
                "codec_params": g.codec_params,
                "crypttext_hash": self.crypttext_hash,
                "crypttext_root_hash": self.crypttext_root_hash,
                "needed_shares": b"%d" % g.needed,
                "num_segments": b"%d" % g.num_segments,
                "segment_size": b"%d" % g.segment_size,
                "share_root_hash": self.share_root_hash,
                "size": b"%d" % g.size,
                "tail_codec_params": g.tail_codec_params,
                "total_shares": b"%d" % g.total,
            }
        )

    def hash(self) -> bytes:
        return ueb_hash(self.serialize())


def ueb_length(geometry: FileGeometry) -> int:
    """Length of the serialized UEB, computed with placeholder hashes."""
    zero = b"\x00" * 32
    return len(URIExtension(geometry, zero, zero, zero).serialize())


def parse_and_validate(
    data: bytes, *, expected_hash: bytes, size: int, needed: int, total: int
) -> tuple[URIExtension, dict[str, bytes]]:
    """Check a UEB against the cap's hash and numbers; return it parsed.

    Raises ``IntegrityError`` when anything disagrees.
    """
    if len(data) >= MAX_UEB_LENGTH:
        raise IntegrityError("URI extension block is ridiculously large")
    if ueb_hash(data) != expected_hash:
        raise IntegrityError("URI extension block does not match the cap")
    fields = unpack(data)
    for name in ("segment_size", "crypttext_root_hash", "share_root_hash"):
        if name not in fields:
            raise IntegrityError(f"URI extension block lacks {name}")
    try:
        segsize = int(fields["segment_size"])
        geometry = FileGeometry(size, needed, total, segsize)
    except (ValueError, FormatError) as exc:
        raise IntegrityError("URI extension block has a bad segment size") from exc
    expect = {
        "codec_name": b"crs",
        "codec_params": geometry.codec_params,
        "tail_codec_params": geometry.tail_codec_params,
        "num_segments": b"%d" % geometry.num_segments,
        "size": b"%d" % size,
        "needed_shares": b"%d" % needed,
        "total_shares": b"%d" % total,
    }
    for name, value in expect.items():
        if name in fields and fields[name] != value:
            raise IntegrityError(f"URI extension block field {name} disagrees with the cap")
    for name in _HASH_FIELDS:
        if name in fields and len(fields[name]) != 32:
            raise IntegrityError(f"URI extension block field {name} is not 32 bytes")
    ueb = URIExtension(
        geometry,
        fields.get("crypttext_hash", b""),
        fields["crypttext_root_hash"],
        fields["share_root_hash"],
    )
    return ueb, fields
