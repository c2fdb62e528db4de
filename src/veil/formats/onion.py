"""Version 3 onion service keys and addresses (Tor's rend-spec-v3).

A node's onion address is fixed by an Ed25519 key that veil makes itself,
so ``veil create-node --listen=tor`` needs no running Tor and the address
survives restarts. The key is kept as Tor's ``ADD_ONION`` key blob,
``ED25519-V3:<base64 of the 64-byte expanded secret key>``, which is also
what Tahoe-LAFS writes to ``private/tor_onion.privkey``.

    address = base32(pubkey || checksum || 0x03) + ".onion"
    checksum = SHA3-256(".onion checksum" || pubkey || 0x03)[:2]
    expanded = clamp(SHA-512(seed)[:32]) || SHA-512(seed)[32:]
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from veil.errors import FormatError, UsageError

KEY_PREFIX = "ED25519-V3:"
VERSION = b"\x03"
ADDRESS_LENGTH = 56  # base32 characters before ".onion"


def _checksum(pubkey: bytes) -> bytes:
    return hashlib.sha3_256(b".onion checksum" + pubkey + VERSION).digest()[:2]


def address_of(pubkey: bytes) -> str:
    """The ``<56 chars>.onion`` name of an Ed25519 public key."""
    if len(pubkey) != 32:
        raise FormatError("an onion service public key is 32 bytes")
    raw = pubkey + _checksum(pubkey) + VERSION
    return base64.b32encode(raw).decode("ascii").lower() + ".onion"


def pubkey_of_address(host: str) -> bytes:
    """Check an onion host name (checksum included) and return its public key."""
    name = host.lower().removesuffix(".onion")
    if len(name) != ADDRESS_LENGTH or not host.lower().endswith(".onion"):
        raise UsageError(f"{host!r} is not a version 3 onion address (56 characters + .onion)")
    try:
        raw = base64.b32decode(name.upper())
    except ValueError:
        raise UsageError(f"{host!r} is not a valid onion address") from None
    pubkey, checksum, version = raw[:32], raw[32:34], raw[34:]
    if version != VERSION or checksum != _checksum(pubkey):
        raise UsageError(f"{host!r} is not a valid onion address (bad checksum)")
    return pubkey


@dataclass(frozen=True)
class OnionKey:
    """An onion service's secret key in Tor's expanded form, and its address."""

    expanded: bytes  # 64 bytes: clamped scalar || hash prefix
    pubkey: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> OnionKey:
        if len(seed) != 32:
            raise UsageError("an Ed25519 seed is 32 bytes")
        digest = bytearray(hashlib.sha512(seed).digest())
        digest[0] &= 248
        digest[31] &= 127
        digest[31] |= 64
        pub = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return cls(bytes(digest), pub)

    @property
    def address(self) -> str:
        return address_of(self.pubkey)

    @property
    def service_id(self) -> str:
        """The address without ``.onion``, as Tor's ``ServiceID`` reports it."""
        return self.address.removesuffix(".onion")

    def to_blob(self) -> str:
        return KEY_PREFIX + base64.b64encode(self.expanded).decode("ascii")


def parse_key_blob(text: str) -> str:
    """Check a stored key blob and return it as Tor wants it in ``ADD_ONION``.

    (The address is not recomputed from an expanded key; Tor reports it as
    ``ServiceID`` and the caller compares it with the recorded one.)
    """
    blob = text.strip()
    if not blob.startswith(KEY_PREFIX):
        raise FormatError("an onion key file starts with ED25519-V3:")
    try:
        raw = base64.b64decode(blob[len(KEY_PREFIX) :], validate=True)
    except ValueError:
        raise FormatError("the onion key file is not valid base64") from None
    if len(raw) != 64:
        raise FormatError("an onion key is 64 bytes")
    return blob
