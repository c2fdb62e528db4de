"""NURLs (HTTP storage addresses) and fURLs (Foolscap addresses) (digest §5.1, §5.7).

    pb://<spki-hash>@<host>:<port>/<swissnum>#v=1        plain TCP
    pb+tor://<spki-hash>@<onion>:<port>/<swissnum>#v=1   through Tor
    pb://<tubid>@tcp:<host>:<port>[,hint…]/<swissnum>    fURL

The SPKI hash is URL-safe base64 without padding (43 chars) of SHA-256 of the
server certificate's DER SubjectPublicKeyInfo. The fURL's tubid is 20 bytes
(b32, 32 chars); Tahoe clients bind lease secrets to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from veil.errors import FormatError
from veil.formats import base32

_NURL = re.compile(
    r"^(pb|pb\+tor|pb\+i2p)://([A-Za-z0-9_-]{43})@(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})"
    r"/([^/#?\s]+)#v=1$"
)
_FURL = re.compile(r"^pb://([a-z2-7]{32})@([^/\s]*)/([^/#?\s]+)$")


@dataclass(frozen=True)
class NURL:
    scheme: str
    spki_hash: str
    host: str
    port: int
    swissnum: str

    def to_string(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{self.spki_hash}@{host}:{self.port}/{self.swissnum}#v=1"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:  # the swissnum is a secret
        return f"NURL({self.scheme}://{self.spki_hash[:8]}…@{self.host}:{self.port})"


@dataclass(frozen=True)
class FURL:
    tubid: bytes
    hints: tuple[str, ...]
    swissnum: str

    def to_string(self) -> str:
        return f"pb://{base32.b2a(self.tubid)}@{','.join(self.hints)}/{self.swissnum}"


def parse_nurl(text: str) -> NURL:
    m = _NURL.match(text.strip())
    if not m:
        raise FormatError(f"not a storage NURL: {text[:60]!r}")
    port = int(m[4])
    if not 0 < port < 65536:
        raise FormatError(f"NURL port out of range: {port}")
    return NURL(m[1], m[2], m[3].strip("[]"), port, m[5])


def parse_furl(text: str) -> FURL:
    m = _FURL.match(text.strip())
    if not m:
        raise FormatError(f"not a fURL: {text[:60]!r}")
    return FURL(base32.a2b(m[1]), tuple(h for h in m[2].split(",") if h), m[3])
