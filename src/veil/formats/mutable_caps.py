"""Mutable-file and directory caps, and the mutable key chain (digest §1.2, §1.3, §2).

    privkey (PKCS#8 DER) ──TH──▶ writekey ──TH──▶ readkey ──TH──▶ storage index
    pubkey (SPKI DER)    ──TH──▶ fingerprint (in every cap)
    writekey ──TH──▶ write-enabler master ──TPH(server tubid)──▶ write enabler

Caps: ``URI:SSK:`` / ``URI:SSK-RO:`` / ``URI:SSK-Verifier:`` (SDMF) and the
``URI:MDMF…`` forms, each ``b32(key or SI):b32(fingerprint)``; directories wrap
a file cap by renaming its prefix (``URI:DIR2:`` is a ``URI:SSK:``,
``URI:DIR2-CHK:`` a ``URI:CHK:``, …). Attenuation (write → read → verify)
needs only hashing, never the network: ``attenuate`` is ``veil attenuate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from veil.errors import CapabilityError
from veil.formats import base32
from veil.formats.caps import CHKReadCap, CHKVerifyCap, LiteralCap, UnknownCap
from veil.formats.hashes import tagged_hash, tagged_pair_hash

TAG_PRIVKEY_TO_WRITEKEY = b"allmydata_mutable_privkey_to_writekey_v1"
TAG_WRITEKEY_TO_READKEY = b"allmydata_mutable_writekey_to_readkey_v1"
TAG_READKEY_TO_SI = b"allmydata_mutable_readkey_to_storage_index_v1"
TAG_PUBKEY_TO_FINGERPRINT = b"allmydata_mutable_pubkey_to_fingerprint_v1"
TAG_WRITE_ENABLER_MASTER = b"allmydata_mutable_writekey_to_write_enabler_master_v1"
TAG_WRITE_ENABLER = b"allmydata_mutable_write_enabler_master_and_nodeid_to_write_enabler_v1"
TAG_DATAKEY = b"allmydata_mutable_readkey_to_datakey_v1"

_B32_128 = r"[a-z2-7]{25}[aqiyemu4]"
_B32_256 = r"[a-z2-7]{51}[aq]"


# -- the key chain --------------------------------------------------------------------


def writekey_from_privkey(privkey_der: bytes) -> bytes:
    return tagged_hash(TAG_PRIVKEY_TO_WRITEKEY, privkey_der, 16)


def readkey_from_writekey(writekey: bytes) -> bytes:
    return tagged_hash(TAG_WRITEKEY_TO_READKEY, writekey, 16)


def storage_index_from_readkey(readkey: bytes) -> bytes:
    return tagged_hash(TAG_READKEY_TO_SI, readkey, 16)


def fingerprint_from_pubkey(pubkey_der: bytes) -> bytes:
    return tagged_hash(TAG_PUBKEY_TO_FINGERPRINT, pubkey_der)


def write_enabler_master(writekey: bytes) -> bytes:
    return tagged_hash(TAG_WRITE_ENABLER_MASTER, writekey)


def write_enabler(master: bytes, server_tubid: bytes) -> bytes:
    """Per-server secret proving write authority (the server's 20-byte tubid)."""
    return tagged_pair_hash(TAG_WRITE_ENABLER, master, server_tubid)


def data_key(salt: bytes, readkey: bytes) -> bytes:
    """AES key of a segment: salt first, then the read key (digest §1.2)."""
    return tagged_pair_hash(TAG_DATAKEY, salt, readkey, 16)


def _describe(cap: object) -> str:
    from veil.formats.cap_display import describe

    return describe(cap)


# -- file caps ------------------------------------------------------------------------


@dataclass(frozen=True)
class _SSKCap:
    key: bytes  # writekey, readkey or storage index, depending on the kind
    fingerprint: bytes
    mdmf: bool = False

    kind = ""  # "", "-RO" or "-Verifier"

    @property
    def prefix(self) -> str:
        return ("URI:MDMF" if self.mdmf else "URI:SSK") + self.kind

    def to_string(self) -> str:
        return f"{self.prefix}:{base32.b2a(self.key)}:{base32.b2a(self.fingerprint)}"

    def __str__(self) -> str:  # keys are secrets: never in a message or log
        return _describe(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_describe(self)})"


class SSKVerifyCap(_SSKCap):
    kind = "-Verifier"

    @property
    def storage_index(self) -> bytes:
        return self.key


class SSKReadCap(_SSKCap):
    kind = "-RO"

    @property
    def readkey(self) -> bytes:
        return self.key

    @property
    def storage_index(self) -> bytes:
        return storage_index_from_readkey(self.key)

    def verify_cap(self) -> SSKVerifyCap:
        return SSKVerifyCap(self.storage_index, self.fingerprint, self.mdmf)


class SSKWriteCap(_SSKCap):
    @property
    def writekey(self) -> bytes:
        return self.key

    def read_cap(self) -> SSKReadCap:
        return SSKReadCap(readkey_from_writekey(self.key), self.fingerprint, self.mdmf)

    def verify_cap(self) -> SSKVerifyCap:
        return self.read_cap().verify_cap()


_SSK_KINDS: dict[str, type[_SSKCap]] = {
    "": SSKWriteCap,
    "-RO": SSKReadCap,
    "-Verifier": SSKVerifyCap,
}
_SSK_RE = re.compile(rf"^URI:(SSK|MDMF)(|-RO|-Verifier):({_B32_128}):({_B32_256})(:.*)?$")


def parse_ssk(text: str) -> _SSKCap | None:
    """An SSK/MDMF cap, or None. MDMF tolerates (and drops) extra ``:…`` fields."""
    m = _SSK_RE.match(text)
    if not m or (m[5] is not None and m[1] == "SSK"):
        return None
    cls = _SSK_KINDS[m[2]]
    return cls(base32.a2b(m[3]), base32.a2b(m[4]), m[1] == "MDMF")


# -- directory caps -------------------------------------------------------------------

_DIR_PREFIXES = {  # directory prefix -> the file cap prefix it wraps (longest first)
    "URI:DIR2-MDMF-Verifier:": "URI:MDMF-Verifier:",
    "URI:DIR2-MDMF-RO:": "URI:MDMF-RO:",
    "URI:DIR2-MDMF:": "URI:MDMF:",
    "URI:DIR2-CHK-Verifier:": "URI:CHK-Verifier:",
    "URI:DIR2-CHK:": "URI:CHK:",
    "URI:DIR2-Verifier:": "URI:SSK-Verifier:",
    "URI:DIR2-LIT:": "URI:LIT:",
    "URI:DIR2-RO:": "URI:SSK-RO:",
    "URI:DIR2:": "URI:SSK:",
}
FileCap = _SSKCap | CHKReadCap | CHKVerifyCap | LiteralCap


@dataclass(frozen=True)
class DirCap:
    """A directory: the cap of the file that holds its entries, renamed."""

    file: FileCap

    def to_string(self) -> str:
        inner = self.file.to_string()
        for dir_prefix, file_prefix in _DIR_PREFIXES.items():
            if inner.startswith(file_prefix):
                return dir_prefix + inner[len(file_prefix) :]
        raise CapabilityError("this file cap cannot hold a directory")

    def __str__(self) -> str:  # a directory cap is as secret as its file's
        return _describe(self)

    def __repr__(self) -> str:
        return f"DirCap({_describe(self)})"


def parse_dir(text: str) -> DirCap | None:
    from veil.formats.caps import parse_cap

    for dir_prefix, file_prefix in _DIR_PREFIXES.items():
        if text.startswith(dir_prefix):
            inner_text = file_prefix + text[len(dir_prefix) :]
            inner = parse_ssk(inner_text) or parse_cap(inner_text)
            if isinstance(inner, UnknownCap):
                return None
            return DirCap(inner)
    return None


# -- attenuation ----------------------------------------------------------------------


def _weaker(file: FileCap, verify: bool) -> FileCap:
    if isinstance(file, SSKWriteCap):
        return file.verify_cap() if verify else file.read_cap()
    if isinstance(file, SSKReadCap | CHKReadCap):
        return file.verify_cap() if verify else file
    if isinstance(file, SSKVerifyCap | CHKVerifyCap) or not verify:
        return file  # already as weak as asked (a LIT cap is read-only)
    raise CapabilityError(
        "a LIT cap holds its data inside the cap, so it has no verify cap "
        "(there is nothing on the grid to check)"
    )


def attenuate(cap: FileCap | DirCap, *, verify: bool = False) -> FileCap | DirCap:
    """The read-only (or, with ``verify``, the verify) cap of ``cap``."""
    if isinstance(cap, DirCap):
        return DirCap(_weaker(cap.file, verify))
    return _weaker(cap, verify)


AnyCap = FileCap | DirCap | UnknownCap
_WRITE = (SSKWriteCap,)


def parse_any(text: str) -> AnyCap:
    """Any cap veil knows (file or directory, immutable or mutable); like Tahoe,
    anything else is kept as ``UnknownCap``. ``ro.`` refuses write caps and
    ``imm.`` refuses mutable ones (they become unknown, as in Tahoe)."""
    from veil.formats.caps import parse_cap

    text = text.strip()
    body = text.removeprefix("ro.").removeprefix("imm.")
    cap: AnyCap = parse_dir(body) or parse_ssk(body) or parse_cap(body)
    file = cap.file if isinstance(cap, DirCap) else cap
    if text.startswith("ro.") and isinstance(file, _WRITE):
        return UnknownCap(text)
    if text.startswith("imm.") and isinstance(file, _SSKCap):
        return UnknownCap(text)
    return cap


def parse_user_cap(text: str) -> FileCap | DirCap:
    """A cap a user typed: ``CapabilityError`` saying what is wrong if it is not one."""
    from veil.formats.cap_display import kind_of_text

    cap = parse_any(text)
    if isinstance(cap, UnknownCap):
        body = text.strip().removeprefix("ro.").removeprefix("imm.")
        known = body.startswith(("URI:SSK", "URI:MDMF", "URI:DIR2", "URI:CHK", "URI:LIT"))
        raise CapabilityError(
            f"malformed capability ({kind_of_text(text)})"
            if known
            else f"not a capability veil knows ({kind_of_text(text)})",
            hint="copy the whole cap, e.g. URI:DIR2:…:… or URI:CHK:…:…:3:10:12345",
        )
    return cap
