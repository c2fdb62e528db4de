"""MDMF mutable shares (digest §1.4-1.8): layout, encoding, checking.

Segments of 128 KiB (rounded up to a multiple of k), each encrypted with its
own random salt (``AES-CTR(TPH(datakey tag, salt, readkey))``) and stored as
``salt || block`` in every share; the block hash tree's leaves cover the salt
too. The signed prefix is ``>BQ32sBBQQ`` (version 1, seqnum, R, k, N,
segsize, datalen).

    header (123)  prefix, then offsets: encprivkey, chain, signature, vk,
                  end of vk, share data, block hash tree, EOF
    body          encprivkey | chain | signature | vk | zeros to 2167 |
                  salt+block per segment | block hash tree (all nodes)
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from veil.errors import FormatError, IntegrityError
from veil.formats import merkle
from veil.formats.crypto import ctr_cipher
from veil.formats.hashes import block_hash
from veil.formats.mutable_caps import data_key, fingerprint_from_pubkey
from veil.formats.sdmf import CHAIN_ENTRY, PSS

HEADER = struct.Struct(">BQ32sBBQQQQQQQQQQ")
PREFIX = struct.Struct(">BQ32sBBQQ")
CHECKSTRING = struct.Struct(">BQ32s")
MDMF_VERSION = 1
SEGMENT = 131072
DATA_OFFSET = 123 + 1220 + 260 + 292 + 272  # 2167: where Tahoe puts share data
SALT = 16


@dataclass(frozen=True)
class Geometry:
    k: int
    n: int
    segsize: int
    datalen: int

    @classmethod
    def for_length(cls, datalen: int, k: int, n: int) -> Geometry:
        return cls(k, n, -(-SEGMENT // k) * k, datalen)

    @property
    def num_segments(self) -> int:
        return -(-self.datalen // self.segsize)

    @property
    def block_size(self) -> int:
        return self.segsize // self.k

    def segment_length(self, s: int) -> int:
        return min(self.segsize, self.datalen - s * self.segsize)

    def block_length(self, s: int) -> int:
        return -(-self.segment_length(s) // self.k)

    def block_offset(self, s: int) -> int:
        """Where segment ``s``'s salt+block starts, relative to the share data."""
        return s * (SALT + self.block_size)


@dataclass(frozen=True)
class Header:
    seqnum: int
    root_hash: bytes
    geometry: Geometry
    offsets: tuple[int, int, int, int, int, int, int, int]  # key chain sig vk vk_end data bht eof

    def signed_prefix(self) -> bytes:
        g = self.geometry
        return PREFIX.pack(
            MDMF_VERSION, self.seqnum, self.root_hash, g.k, g.n, g.segsize, g.datalen
        )

    def checkstring(self) -> bytes:
        return CHECKSTRING.pack(MDMF_VERSION, self.seqnum, self.root_hash)


def parse_header(data: bytes) -> Header:
    if len(data) < HEADER.size:
        raise FormatError("MDMF share is shorter than its header")
    v, seq, root, k, n, segsize, datalen, *offsets = HEADER.unpack_from(data)
    if v != MDMF_VERSION:
        raise FormatError(f"not an MDMF share (version {v})")
    if not 1 <= k <= n <= 255 or segsize == 0 or segsize % k:
        raise FormatError("MDMF share has impossible parameters")
    if offsets[0] != HEADER.size or any(b < a for a, b in itertools.pairwise(offsets)):
        raise FormatError("MDMF share offsets are out of order")
    return Header(seq, root, Geometry(k, n, segsize, datalen), tuple(offsets))


@dataclass(frozen=True)
class Meta:
    """A share's small parts: everything but the blocks (read from its first bytes)."""

    header: Header
    enc_privkey: bytes
    chain: dict[int, bytes]
    signature: bytes
    pubkey: bytes


def parse_meta(data: bytes) -> Meta:
    h = parse_header(data)
    key_at, chain_at, sig_at, vk_at, vk_end = h.offsets[:5]
    if len(data) < vk_end:
        raise FormatError("MDMF share metadata is truncated")
    chain_bytes = data[chain_at:sig_at]
    if len(chain_bytes) % CHAIN_ENTRY.size:
        raise FormatError("MDMF share hash chain has a partial entry")
    chain = dict(CHAIN_ENTRY.iter_unpack(chain_bytes))
    return Meta(h, data[key_at:chain_at], chain, data[sig_at:vk_at], data[vk_at:vk_end])


def verify_meta(meta: Meta, shnum: int, block_tree: list[bytes], fingerprint: bytes) -> None:
    """Key, signature, block hash tree and share hash chain of one share."""
    h = meta.header
    if fingerprint_from_pubkey(meta.pubkey) != fingerprint:
        raise IntegrityError("the share's public key does not match the cap's fingerprint")
    try:
        key = load_der_public_key(meta.pubkey)
        if not isinstance(key, rsa.RSAPublicKey):
            raise IntegrityError("the share's public key is not RSA")
        key.verify(meta.signature, h.signed_prefix(), PSS, hashes.SHA256())
    except (ValueError, InvalidSignature):
        raise IntegrityError("the share's signature is not valid") from None
    if shnum >= h.geometry.n:
        raise IntegrityError("share number out of range")
    merkle.check_tree(block_tree, block_tree[0] if block_tree else b"", "block hash tree")
    chain = dict(meta.chain)
    chain[merkle.tree_node_count(h.geometry.n) // 2 + shnum] = block_tree[0]
    merkle.check_chain(h.root_hash, shnum, h.geometry.n, chain, "share hash chain")


def check_block(block_tree: list[bytes], geometry: Geometry, s: int, salt_block: bytes) -> None:
    leaves = merkle.tree_node_count(geometry.num_segments) // 2
    if block_tree[leaves + s] != block_hash(salt_block):
        raise IntegrityError(f"block {s} does not match its hash")


def encrypt_segment(plaintext: bytes, salt: bytes, readkey: bytes, geometry: Geometry) -> bytes:
    """Encrypted and zero-padded to a multiple of k (what the codec splits)."""
    crypttext = ctr_cipher(data_key(salt, readkey)).update(plaintext)
    padded_len = -(-len(crypttext) // geometry.k) * geometry.k
    return crypttext + bytes(padded_len - len(crypttext))


def decrypt_segment(pieces: list[bytes], salt: bytes, readkey: bytes, length: int) -> bytes:
    return ctr_cipher(data_key(salt, readkey)).update(b"".join(pieces)[:length])


def build_share(
    *,
    seqnum: int,
    root_hash: bytes,
    geometry: Geometry,
    enc_privkey: bytes,
    chain: dict[int, bytes],
    signature: bytes,
    pubkey: bytes,
    salt_blocks: list[bytes],
    block_tree: list[bytes],
) -> bytes:
    chain_b = b"".join(CHAIN_ENTRY.pack(i, h) for i, h in sorted(chain.items()))
    key_at = HEADER.size
    chain_at = key_at + len(enc_privkey)
    sig_at = chain_at + len(chain_b)
    vk_at = sig_at + len(signature)
    vk_end = vk_at + len(pubkey)
    data_at = max(DATA_OFFSET, vk_end)
    bht_at = data_at + sum(map(len, salt_blocks))
    eof = bht_at + 32 * len(block_tree)
    g = geometry
    offsets = (key_at, chain_at, sig_at, vk_at, vk_end, data_at, bht_at, eof)
    head = HEADER.pack(MDMF_VERSION, seqnum, root_hash, g.k, g.n, g.segsize, g.datalen, *offsets)
    meta = head + enc_privkey + chain_b + signature + pubkey
    return meta + bytes(data_at - len(meta)) + b"".join(salt_blocks) + b"".join(block_tree)


def sign(key: rsa.RSAPrivateKey, seqnum: int, root_hash: bytes, g: Geometry) -> bytes:
    prefix = PREFIX.pack(MDMF_VERSION, seqnum, root_hash, g.k, g.n, g.segsize, g.datalen)
    return key.sign(prefix, PSS, hashes.SHA256())


def public_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
