"""Tahoe's on-disk container of one mutable share (digest §1.10).

    0      32  magic (v1, or v2 whose lease secrets are BLAKE2b-256 hashed)
    32     20  nodeid of the server that recorded the write enabler
    52     32  write enabler
    84      8  data length
    92      8  offset of the extra-lease count (468 + data length)
    100  4×92  lease slots: owner, expiry, renew, cancel, nodeid (owner 0 = empty)
    468        the client's share bytes
    then    4  number of extra leases (veil keeps at most four and writes 0)

Pure: the storage core reads and writes these bytes through its backend.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field

from veil.errors import FormatError
from veil.formats.container import hash_secret
from veil.formats.hashes import tagged_hash

_V1_TEXT = b"Tahoe mutable container v1\n"
_V2_TEXT = b"Tahoe mutable container v2\n"
MAGIC_V1 = _V1_TEXT + bytes.fromhex("750944038e")
MAGIC_V2 = _V2_TEXT + tagged_hash(b"allmydata_mutable_container_header", _V2_TEXT, 5)
MAGIC_PREFIX = b"Tahoe mutable container v"
HEADER = struct.Struct(">32s20s32sQQ")
LEASE = struct.Struct(">LL32s32s20s")
SLOTS = 4
DATA_OFFSET = HEADER.size + SLOTS * LEASE.size  # 468
EXTRA_COUNT = struct.Struct(">L")
MAX_SIZE = 2**40  # refuse writes that would make a container larger than 1 TiB


@dataclass(frozen=True)
class MutableLease:
    owner: int
    expiry: int
    renew: bytes
    cancel: bytes
    nodeid: bytes
    hashed: bool = True

    @classmethod
    def create(
        cls,
        renew: bytes,
        cancel: bytes,
        expiry: int,
        nodeid: bytes,
        *,
        hashed: bool,
        owner: int = 1,
    ) -> MutableLease:
        """A new lease; ``owner`` 1 is what Tahoe 1.20 writes (its ``ownerid = 1``)."""
        if hashed:
            renew, cancel = hash_secret(renew), hash_secret(cancel)
        return cls(owner, expiry, renew, cancel, nodeid, hashed)

    def matches_renew(self, renew_secret: bytes) -> bool:
        presented = hash_secret(renew_secret) if self.hashed else renew_secret
        return hmac.compare_digest(presented, self.renew)

    def pack(self) -> bytes:
        return LEASE.pack(
            self.owner, self.expiry & 0xFFFFFFFF, self.renew, self.cancel, self.nodeid
        )


_EMPTY = MutableLease(0, 0, bytes(32), bytes(32), bytes(20), False)


@dataclass(frozen=True)
class MutableHeader:
    version: int
    nodeid: bytes
    write_enabler: bytes
    data_length: int
    leases: tuple[MutableLease, ...] = field(default=())

    @property
    def hashed(self) -> bool:
        return self.version == 2

    def pack(self) -> bytes:
        magic = MAGIC_V2 if self.version == 2 else MAGIC_V1
        slots = list(self.leases[:SLOTS]) + [_EMPTY] * (SLOTS - len(self.leases[:SLOTS]))
        head = HEADER.pack(
            magic, self.nodeid, self.write_enabler, self.data_length, DATA_OFFSET + self.data_length
        )
        return head + b"".join(s.pack() for s in slots)

    def trailer(self) -> bytes:
        """What follows the data: the extra-lease count (always 0 here)."""
        return EXTRA_COUNT.pack(0)


def new_header(nodeid: bytes, write_enabler: bytes) -> MutableHeader:
    if len(nodeid) != 20 or len(write_enabler) != 32:
        raise FormatError("a mutable container needs a 20-byte nodeid and a 32-byte write enabler")
    return MutableHeader(2, nodeid, write_enabler, 0)


def is_mutable(prefix: bytes) -> bool:
    return prefix.startswith(MAGIC_PREFIX)


def parse_header(data: bytes) -> MutableHeader:
    if len(data) < DATA_OFFSET:
        raise FormatError("mutable container is shorter than its header")
    magic, nodeid, we, length, _extra = HEADER.unpack_from(data)
    if magic == MAGIC_V2:
        version = 2
    elif magic == MAGIC_V1:
        version = 1
    else:
        raise FormatError("not a Tahoe mutable container (bad magic)")
    leases = []
    for i in range(SLOTS):
        owner, expiry, renew, cancel, lnode = LEASE.unpack_from(data, HEADER.size + i * LEASE.size)
        if owner:
            leases.append(MutableLease(owner, expiry, renew, cancel, lnode, version == 2))
    return MutableHeader(version, nodeid, we, length, tuple(leases))
