"""The recovery blob's envelope: nothing in it can be told from random bytes.

    blob = salt (16) | nonce (24) | XChaCha20-Poly1305 ciphertext (with its 16-byte tag)

and ``len(blob)`` is one of ``SIZE_CLASSES``. The key comes from the
passphrase through Argon2id (libsodium's ``crypto_pwhash``, via PyNaCl) with
the blob's random salt, mixed (BLAKE2b) with the friends' secret when the
blob was made with ``--friends`` (``veil.formats.recovery_shares``). No
magic bytes, no version and no parameters in the clear: they are the first
bytes of the authenticated plaintext

    version (1) | kdf id (1) | friends k (1) | friends n (1) | body length (4) | body | zeros

and decryption tries each of ``KDF_SETS`` in turn; the id found inside must
be the set that opened it. The body is opaque here (zlib-compressed JSON,
``veil.formats.recovery_document``). ``armour``/``unarmour`` give the text
form for e-mail or paper: base32 lines with a short check per line, so a
typing mistake is found by its line. Pure: no I/O; randomness from
libsodium. Not for the document's contents or the shares' words.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.pwhash.argon2id as argon2id
import nacl.utils

from veil.errors import VeilError

VERSION = 1
SALT_BYTES = sodium.crypto_pwhash_SALTBYTES  # 16
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
KEY_BYTES = 32
HEADER = struct.Struct(">BBBBI")
SIZE_CLASSES = (4096, 16384, 65536, 262144, 1 << 20, 4 << 20)
OVERHEAD = SALT_BYTES + NONCE_BYTES + TAG_BYTES + HEADER.size
KEY_PERSON = b"veil-recovery-1"  # BLAKE2b personalisation (at most 16 bytes)


class RecoveryError(VeilError):
    """A recovery blob, share or passphrase that cannot be used."""


@dataclass(frozen=True)
class KdfParams:
    """One Argon2id parameter set; ``ident`` is what the plaintext records."""

    ident: int
    name: str
    opslimit: int
    memlimit: int

    def __repr__(self) -> str:
        return f"KdfParams({self.name}: ops={self.opslimit}, {self.memlimit >> 20} MiB)"


# Measured on the project's 2-core machine (docs/travel.md): default ~1.5 s, low-memory ~1.2 s.
DEFAULT_KDF = KdfParams(1, "default", 2, 512 << 20)
LOW_MEMORY_KDF = KdfParams(2, "low-memory", 4, 256 << 20)
KDF_SETS = (DEFAULT_KDF, LOW_MEMORY_KDF)  # what decryption tries, in this order


@dataclass(frozen=True)
class Opened:
    body: bytes
    kdf: KdfParams
    friends: tuple[int, int] | None  # (k, n) when the key needs friends' shares

    def __repr__(self) -> str:
        return f"Opened({len(self.body)} bytes, {self.kdf!r}, friends={self.friends})"


def size_class(body_len: int) -> int:
    """The smallest allowed blob size that holds a body of ``body_len`` bytes."""
    for size in SIZE_CLASSES:
        if body_len + OVERHEAD <= size:
            return size
    raise RecoveryError(
        f"the recovery data is too large for a blob ({body_len} bytes, "
        f"at most {SIZE_CLASSES[-1] - OVERHEAD})",
        hint="back up fewer separate directories, or forget old aliases",
    )


def derive_key(
    passphrase: bytes, salt: bytes, kdf: KdfParams, friends_secret: bytes | None = None
) -> bytes:
    """The blob key: Argon2id of the passphrase, mixed with the friends' secret."""
    stretched = argon2id.kdf(
        KEY_BYTES, passphrase, salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit
    )
    mixed: bytes = nacl.hash.blake2b(
        stretched + (friends_secret or b""),
        digest_size=KEY_BYTES,
        person=KEY_PERSON,
        encoder=nacl.encoding.RawEncoder,
    )
    return mixed


def seal(
    body: bytes,
    key: bytes,
    salt: bytes,
    kdf: KdfParams,
    friends: tuple[int, int] | None = None,
) -> bytes:
    """The envelope for ``body`` under ``key`` (derived with ``salt`` and ``kdf``)."""
    if len(salt) != SALT_BYTES or len(key) != KEY_BYTES:
        raise ValueError("salt or key of the wrong length")
    total = size_class(len(body))
    k, n = friends or (0, 0)
    plain = HEADER.pack(VERSION, kdf.ident, k, n, len(body)) + body
    plain += bytes(total - SALT_BYTES - NONCE_BYTES - TAG_BYTES - len(plain))
    nonce = nacl.utils.random(NONCE_BYTES)
    sealed: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, None, nonce, key)
    return salt + nonce + sealed


def open_sealed(blob: bytes, key: bytes, kdf: KdfParams) -> Opened | None:
    """The contents if ``key`` opens ``blob`` and the plaintext says ``kdf``; else None."""
    nonce = blob[SALT_BYTES : SALT_BYTES + NONCE_BYTES]
    try:
        plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[SALT_BYTES + NONCE_BYTES :], None, nonce, key
        )
    except nacl.exceptions.CryptoError:
        return None
    version, ident, k, n, length = HEADER.unpack_from(plain)
    if version != VERSION or ident != kdf.ident or HEADER.size + length > len(plain):
        return None  # authentic but not ours to read: treated as not opened
    return Opened(plain[HEADER.size : HEADER.size + length], kdf, (k, n) if n else None)


def encrypt(
    body: bytes,
    passphrase: bytes,
    *,
    kdf: KdfParams = DEFAULT_KDF,
    friends_secret: bytes | None = None,
    friends: tuple[int, int] | None = None,
) -> bytes:
    salt = nacl.utils.random(SALT_BYTES)
    return seal(body, derive_key(passphrase, salt, kdf, friends_secret), salt, kdf, friends)


def check_size(blob: bytes) -> None:
    if len(blob) not in SIZE_CLASSES:
        raise RecoveryError(
            f"this is not a whole recovery blob ({len(blob)} bytes; a blob is "
            f"{', '.join(str(s) for s in SIZE_CLASSES[:3])}, ... bytes long)",
            hint="it may be truncated: fetch the blob again",
        )


def decrypt(
    blob: bytes,
    passphrase: bytes,
    *,
    friends_secret: bytes | None = None,
    kdfs: tuple[KdfParams, ...] = KDF_SETS,
) -> Opened:
    """Open ``blob``, trying each parameter set of ``kdfs`` in turn."""
    check_size(blob)
    salt = blob[:SALT_BYTES]
    for kdf in kdfs:
        opened = open_sealed(blob, derive_key(passphrase, salt, kdf, friends_secret), kdf)
        if opened is not None:
            return opened
    raise RecoveryError(
        "the passphrase"
        + (" and shares do" if friends_secret else " does")
        + " not open this recovery blob (or the blob is damaged)",
        hint="check the passphrase"
        + ("; the shares must come from this blob's set" if friends_secret else "")
        + "; a blob made with --friends also needs the shares (--share)",
    )


# -- text form -----------------------------------------------------------------

LINE_CHARS = 64  # base32 characters a line, in groups of 8
CHECK_CHARS = 3


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _line_check(number: int, chars: str) -> str:
    digest = nacl.hash.blake2b(
        f"{number}:{chars}".encode("ascii"), digest_size=4, encoder=nacl.encoding.RawEncoder
    )
    return _b32(digest)[:CHECK_CHARS]


def armour(blob: bytes) -> str:
    """The text form: base32 lines of 8 groups of 8, each line ending in its check."""
    text = _b32(blob)
    lines = []
    for number, start in enumerate(range(0, len(text), LINE_CHARS), 1):
        chars = text[start : start + LINE_CHARS]
        groups = " ".join(chars[i : i + 8] for i in range(0, len(chars), 8))
        lines.append(f"{groups}  {_line_check(number, chars)}")
    return "\n".join(lines) + "\n"


def looks_armoured(data: bytes) -> bool:
    allowed = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ234567 \t\r\n")
    return bool(data.strip()) and all(c in allowed for c in data)


def unarmour(text: str) -> bytes:
    """The blob from its text form; a line whose check fails is named."""
    chars = []
    lines = [line.split() for line in text.lower().splitlines() if line.strip()]
    for number, words in enumerate(lines, 1):
        if len(words) < 2:
            raise RecoveryError(f"line {number} of the text blob is incomplete")
        data = "".join(words[:-1])
        if _line_check(number, data) != words[-1]:
            raise RecoveryError(
                f"line {number} of the text blob has a mistake (its check does not match)",
                hint="compare that line with the original, letter by letter",
            )
        chars.append(data)
    joined = "".join(chars).upper()
    try:
        return base64.b32decode(joined + "=" * (-len(joined) % 8))
    except ValueError:
        raise RecoveryError("the text blob is not complete base32") from None


def read_blob(data: bytes) -> bytes:
    """A blob from a file's bytes: the raw blob or its text form."""
    if len(data) not in SIZE_CLASSES and looks_armoured(data):
        blob = unarmour(data.decode("ascii"))
    else:
        blob = data
    check_size(blob)
    return blob


__all__ = [
    "DEFAULT_KDF",
    "KDF_SETS",
    "LOW_MEMORY_KDF",
    "SIZE_CLASSES",
    "KdfParams",
    "Opened",
    "RecoveryError",
    "armour",
    "decrypt",
    "derive_key",
    "encrypt",
    "open_sealed",
    "read_blob",
    "seal",
    "unarmour",
]
