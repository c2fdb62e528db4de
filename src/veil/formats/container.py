"""Tahoe's on-disk container of one immutable share, and lease records (digest §3.7).

    0x00  4  container version (1: lease secrets in clear, 2: BLAKE2b-256 of them)
    0x04  4  min(2^32-1, allocated size)   (legacy; readers ignore it)
    0x08  4  number of leases
    0x0c     share data (exactly the bytes the client wrote)
    then     72-byte lease records: owner (4), renew (32), cancel (32), expiry (4)

The data length is ``file size - 12 - 72 * leases``.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from veil.errors import FormatError

HEADER = struct.Struct(">LLL")
LEASE = struct.Struct(">L32s32sL")
HEADER_SIZE = HEADER.size
LEASE_SIZE = LEASE.size
LEASE_DURATION = 31 * 24 * 60 * 60
CURRENT_VERSION = 2


def hash_secret(secret: bytes) -> bytes:
    """What a v2 container stores for a lease secret."""
    return hashlib.blake2b(secret, digest_size=32).digest()


@dataclass(frozen=True)
class ContainerHeader:
    version: int
    legacy_length: int
    lease_count: int

    def pack(self) -> bytes:
        return HEADER.pack(self.version, self.legacy_length, self.lease_count)


def new_header(allocated_size: int, lease_count: int = 0) -> ContainerHeader:
    return ContainerHeader(CURRENT_VERSION, min(2**32 - 1, allocated_size), lease_count)


def parse_header(data: bytes) -> ContainerHeader:
    if len(data) < HEADER_SIZE:
        raise FormatError("share container is shorter than its header")
    version, legacy, count = HEADER.unpack(data[:HEADER_SIZE])
    if version not in (1, 2):
        raise FormatError(f"unknown share container version {version}")
    return ContainerHeader(version, legacy, count)


def data_length(file_size: int, header: ContainerHeader) -> int:
    length = file_size - HEADER_SIZE - LEASE_SIZE * header.lease_count
    if length < 0:
        raise FormatError("share container is shorter than its leases")
    return length


@dataclass(frozen=True)
class Lease:
    """One lease as stored; secrets are hashed when ``hashed`` (v2 containers)."""

    owner: int
    renew: bytes
    cancel: bytes
    expiry: int
    hashed: bool = True

    @classmethod
    def create(
        cls, owner: int, renew_secret: bytes, cancel_secret: bytes, expiry: int, *, hashed: bool
    ) -> Lease:
        if hashed:
            return cls(owner, hash_secret(renew_secret), hash_secret(cancel_secret), expiry, True)
        return cls(owner, renew_secret, cancel_secret, expiry, False)

    def matches_renew(self, renew_secret: bytes) -> bool:
        presented = hash_secret(renew_secret) if self.hashed else renew_secret
        return hmac.compare_digest(presented, self.renew)

    def renewed(self, expiry: int) -> Lease:
        """This lease with a later expiry; never shortened."""
        return Lease(self.owner, self.renew, self.cancel, max(self.expiry, expiry), self.hashed)

    def pack(self) -> bytes:
        return LEASE.pack(self.owner, self.renew, self.cancel, self.expiry & 0xFFFFFFFF)


def parse_leases(data: bytes, *, hashed: bool) -> list[Lease]:
    if len(data) % LEASE_SIZE:
        raise FormatError("lease area has a partial record")
    return [Lease(o, r, c, e, hashed) for o, r, c, e in LEASE.iter_unpack(data)]


def pack_leases(leases: list[Lease]) -> bytes:
    return b"".join(lease.pack() for lease in leases)
