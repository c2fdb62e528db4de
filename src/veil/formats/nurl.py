"""NURLs (HTTP storage addresses), fURLs (Foolscap addresses) and SPKI hashes.

    pb://<spki-hash>@<host>:<port>/<swissnum>#v=1        plain TCP (digest §5.1)
    pb+tor://<spki-hash>@<onion>:<port>/<swissnum>#v=1   through Tor
    pb://<tubid>@tcp:<host>:<port>[,hint...]/<swissnum>  fURL (digest §5.7)

The SPKI hash is URL-safe base64 without padding (43 characters) of SHA-256 of
the server certificate's DER SubjectPublicKeyInfo. A fURL's tubid is 20 bytes
(32 base32 characters), ``SHA-1(DER certificate)`` for Tahoe servers; Tahoe
clients bind lease secrets to it. Pure text and hashing only: loading
certificates and TLS live in ``veil.adapters.http.tls``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from veil.errors import FormatError
from veil.formats import base32

NURL_SCHEMES = ("pb", "pb+tor", "pb+i2p")
ANONYMOUS_SUFFIXES = (".onion", ".i2p")
SPKI_HASH_LENGTH = 43  # characters; 32 bytes of SHA-256
TUBID_LENGTH = 20  # bytes

_SPKI_TEXT = re.compile(r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]\Z")  # canonical 32 bytes
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,255}\Z")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]{2,45}\Z")
_SWISSNUM = re.compile(r"^[^/#?@\s]+\Z")
_NURL = re.compile(
    r"^(?P<scheme>[a-z0-9+]+)://(?P<hash>[^@/]*)@(?P<host>\[[^\]/]*\]|[^:/@\[\]]*)"
    r":(?P<port>[0-9]{1,5})/(?P<swiss>[^#]*)#(?P<frag>.*)\Z"
)
_FURL = re.compile(r"^pb://(?P<tubid>[^@/]*)@(?P<hints>[^/]*)/(?P<swiss>[^#/]*)\Z")


# -- SPKI hashes and tubids -----------------------------------------------------


def spki_hash_text(digest: bytes) -> str:
    """The NURL text form of a 32-byte SHA-256 digest."""
    if len(digest) != 32:
        raise FormatError(f"an SPKI hash is a 32-byte SHA-256 digest, not {len(digest)} bytes")
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def spki_hash_of_spki_der(spki_der: bytes) -> str:
    """SPKI hash text of DER-encoded SubjectPublicKeyInfo bytes."""
    return spki_hash_text(hashlib.sha256(spki_der).digest())


def parse_spki_hash(text: str) -> bytes:
    """The 32-byte digest from SPKI hash text; ``FormatError`` if malformed."""
    if not _SPKI_TEXT.match(text):
        raise FormatError(
            f"not an SPKI hash (43 URL-safe base64 characters): {text[:50]!r}",
        )
    return base64.urlsafe_b64decode(text + "=")


def tubid_of_cert_der(cert_der: bytes) -> bytes:
    """Tahoe's tubid of a certificate: SHA-1 of its DER encoding (20 bytes)."""
    return hashlib.sha1(cert_der).digest()


# -- host names --------------------------------------------------------------------


def normalize_host(host: str) -> str:
    """The one spelling of a host name: lower case, one trailing dot removed.

    DNS names are case-insensitive and ``name.`` is the same name as ``name``,
    so ``ABC.ONION`` and ``abc.onion.`` are onion names; every check that a
    host is anonymous (``.onion``, ``.i2p``) sees only this form. IPv6
    addresses are lower-cased too (brackets are kept if given).
    """
    host = host.lower()
    if host.endswith(".") and not host.startswith("["):
        host = host[:-1]
    return host


def is_anonymous_host(host: str) -> bool:
    """True for names only Tor or I2P can reach (never for the system resolver)."""
    return normalize_host(host).endswith(ANONYMOUS_SUFFIXES)


def is_onion_host(host: str) -> bool:
    return normalize_host(host).endswith(".onion")


def _check_host(host: str) -> str:
    """The bare, normalized host of ``host`` (IPv6 in brackets or not).

    ``FormatError`` if malformed (also for a name with more than one trailing
    dot, or one that is only a dot).
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    bare = normalize_host(bare)
    if not (_NAME.match(bare) or (":" in bare and _IPV6.match(bare))) or bare.endswith("."):
        raise FormatError(f"not a host name or address: {host[:60]!r}")
    return bare


# -- NURLs -------------------------------------------------------------------------


@dataclass(frozen=True)
class NURL:
    """One HTTP storage address. ``host`` is bare (no brackets for IPv6) and
    normalized (``normalize_host``) whichever way the NURL was made."""

    scheme: str
    spki_hash: str
    host: str
    port: int
    swissnum: str

    def __post_init__(self) -> None:
        if self.scheme not in NURL_SCHEMES:
            raise FormatError(f"unknown NURL scheme {self.scheme!r}")
        parse_spki_hash(self.spki_hash)
        if self.host.startswith("["):
            raise FormatError(f"a NURL host has no brackets: {self.host[:60]!r}")
        object.__setattr__(self, "host", _check_host(self.host))
        if not 0 < self.port < 65536:
            raise FormatError(f"NURL port out of range: {self.port}")
        if not _SWISSNUM.match(self.swissnum) or not self.swissnum.isascii():
            raise FormatError("a NURL swissnum must be non-empty ASCII without / # ? @")

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``https://host:port`` — the swissnum never goes into a path (§5.1)."""
        return f"https://{self.netloc}"

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value for this server (§5.3)."""
        return "Tahoe-LAFS " + base64.b64encode(self.swissnum.encode("ascii")).decode("ascii")

    def to_string(self) -> str:
        return f"{self.scheme}://{self.spki_hash}@{self.netloc}/{self.swissnum}#v=1"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:  # the swissnum is a secret
        return f"NURL({self.scheme}://{self.spki_hash[:8]}...@{self.netloc})"


def build_nurl(spki_hash: str, host: str, port: int, swissnum: str, *, scheme: str = "pb") -> NURL:
    """A validated NURL from its parts."""
    return NURL(scheme, spki_hash, host, port, swissnum)


def parse_nurl(text: str) -> NURL:
    """Parse a ``pb://`` or ``pb+tor://`` NURL; ``FormatError`` if malformed."""
    m = _NURL.match(text.strip())
    if not m:
        raise FormatError(
            f"not a storage NURL: {text[:60]!r}",
            hint="expected pb://<spki-hash>@<host>:<port>/<swissnum>#v=1",
        )
    if m["frag"] != "v=1":
        raise FormatError(f"unsupported NURL version {m['frag']!r} (only #v=1 is known)")
    return NURL(m["scheme"], m["hash"], _check_host(m["host"]), int(m["port"]), m["swiss"])


# -- fURLs ----------------------------------------------------------------------


@dataclass(frozen=True)
class FURL:
    """A Foolscap address: only its tubid (the lease seed) matters to veil."""

    tubid: bytes
    hints: tuple[str, ...]
    swissnum: str

    def to_string(self) -> str:
        return f"pb://{base32.b2a(self.tubid)}@{','.join(self.hints)}/{self.swissnum}"

    def __repr__(self) -> str:  # the swissnum is a secret
        return f"FURL({base32.b2a(self.tubid)}@{','.join(self.hints)})"


def parse_furl(text: str) -> FURL:
    """Parse a fURL and decode its 20-byte tubid; ``FormatError`` if malformed."""
    m = _FURL.match(text.strip())
    if not m:
        raise FormatError(
            f"not a fURL: {text[:60]!r}", hint="expected pb://<tubid>@tcp:<host>:<port>/<swissnum>"
        )
    try:
        tubid = base32.a2b(m["tubid"])
    except (FormatError, binascii.Error):
        tubid = b""
    if len(tubid) != TUBID_LENGTH:
        raise FormatError(f"a fURL tubid must be 32 base32 characters: {m['tubid'][:40]!r}")
    if not _SWISSNUM.match(m["swiss"]):
        raise FormatError("a fURL needs a swissnum after the last /")
    hints = tuple(normalize_hint(h) for h in m["hints"].split(",") if h)
    return FURL(tubid, hints, m["swiss"])


HINT_TYPES = ("tcp", "tor", "i2p")


def normalize_hint(hint: str) -> str:
    """A connection hint (``tcp:HOST:PORT``, ``tor:HOST:PORT``, ``HOST:PORT``...)
    with its type and host normalized; the rest is kept as written."""
    kind, sep, rest = hint.partition(":")
    if sep and kind.lower() in HINT_TYPES:
        return f"{kind.lower()}:{_normalize_host_port(rest)}"
    return _normalize_host_port(hint)


def hint_host(hint: str) -> str:
    """The normalized host of a connection hint (``""`` if it names none)."""
    text = normalize_hint(hint)
    kind, sep, rest = text.partition(":")
    if sep and kind in HINT_TYPES:
        text = rest
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else ""
    for i, part in enumerate(text.split(":")):
        if part.startswith("host="):
            return part[5:]
        if i == 0 and "=" not in part:
            return part
    return ""


def _normalize_host_port(text: str) -> str:
    if text.startswith("[") and "]" in text:
        end = text.index("]")
        return text[: end + 1].lower() + text[end + 1 :]
    parts = text.split(":")
    for i, part in enumerate(parts):
        if part.lower().startswith("host="):
            parts[i] = "host=" + normalize_host(part[5:])
        elif i == 0 and "=" not in part:
            parts[i] = normalize_host(part)
    return ":".join(parts)


def lease_seed_from_furl(text: str) -> bytes:
    """The 20 bytes a Tahoe client binds lease secrets to (digest §5.7, §7)."""
    return parse_furl(text).tubid
