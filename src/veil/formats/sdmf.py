"""SDMF mutable shares (digest §1.5-1.7): layout, encoding and checking.

An SDMF version is one segment: the plaintext encrypted with
``AES-CTR(TPH(datakey tag, IV, readkey))``, erasure-coded k-of-N, each share
holding its block, a one-leaf block hash tree, its share hash chain to the
root R, and the RSA-PSS signature over the 75-byte signed prefix
``>BQ32s16sBBQQ`` (version 0, seqnum, R, IV, k, N, segsize, datalen).

    header  >BQ32s16sBBQQLLLLQQ (107 bytes: the prefix, then six offsets)
    body    verification key | signature | chain (>H32s each) | block hash tree |
            block | encrypted private key

Everything here is pure; RSA keys come in as ``cryptography`` objects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from veil.errors import FormatError, IntegrityError
from veil.formats import merkle
from veil.formats.crypto import ctr_cipher
from veil.formats.hashes import block_hash
from veil.formats.mutable_caps import data_key, fingerprint_from_pubkey
from veil.formats.params import next_power_of_two

HEADER = struct.Struct(">BQ32s16sBBQQLLLLQQ")
PREFIX = struct.Struct(">BQ32s16sBBQQ")
CHECKSTRING = struct.Struct(">BQ32s16s")
CHAIN_ENTRY = struct.Struct(">H32s")
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
SDMF_VERSION = 0
MAX_SHARE = 64 * 1024 * 1024  # veil writes SDMF only for small files and directories


@dataclass(frozen=True)
class SDMFShare:
    seqnum: int
    root_hash: bytes
    iv: bytes
    k: int
    n: int
    segsize: int
    datalen: int
    pubkey: bytes  # SubjectPublicKeyInfo DER
    signature: bytes
    chain: dict[int, bytes]  # share hash tree index -> hash
    block_tree: list[bytes]
    block: bytes
    enc_privkey: bytes

    def signed_prefix(self) -> bytes:
        return PREFIX.pack(
            SDMF_VERSION, self.seqnum, self.root_hash, self.iv, self.k, self.n,
            self.segsize, self.datalen,
        )  # fmt: skip

    def checkstring(self) -> bytes:
        return checkstring(self.seqnum, self.root_hash, self.iv)

    def pack(self) -> bytes:
        chain = b"".join(CHAIN_ENTRY.pack(i, h) for i, h in sorted(self.chain.items()))
        tree = b"".join(self.block_tree)
        sig_at = HEADER.size + len(self.pubkey)
        chain_at = sig_at + len(self.signature)
        tree_at = chain_at + len(chain)
        data_at = tree_at + len(tree)
        key_at = data_at + len(self.block)
        eof = key_at + len(self.enc_privkey)
        offsets = (sig_at, chain_at, tree_at, data_at, key_at, eof)
        head = HEADER.pack(*struct.unpack(">BQ32s16sBBQQ", self.signed_prefix()), *offsets)
        return head + self.pubkey + self.signature + chain + tree + self.block + self.enc_privkey


def checkstring(seqnum: int, root_hash: bytes, iv: bytes) -> bytes:
    """The 57 bytes a publish tests for: version, seqnum, R, IV."""
    return CHECKSTRING.pack(SDMF_VERSION, seqnum, root_hash, iv)


def parse_share(data: bytes) -> SDMFShare:
    """Fields of an SDMF share; ``FormatError`` when its structure is wrong."""
    if len(data) < HEADER.size:
        raise FormatError("SDMF share is shorter than its header")
    v, seq, root, iv, k, n, segsize, datalen, sig_at, chain_at, tree_at, data_at, key_at, eof = (
        HEADER.unpack_from(data)
    )
    if v != SDMF_VERSION:
        raise FormatError(f"not an SDMF share (version {v})")
    if not (HEADER.size <= sig_at <= chain_at <= tree_at <= data_at <= key_at <= eof <= len(data)):
        raise FormatError("SDMF share offsets are out of order or past its end")
    if not 1 <= k <= n <= 255 or (chain_at - sig_at) == 0:
        raise FormatError("SDMF share has impossible parameters")
    chain_bytes = data[chain_at:tree_at]
    if len(chain_bytes) % CHAIN_ENTRY.size or (data_at - tree_at) % 32:
        raise FormatError("SDMF share hash chain or block hash tree has a partial entry")
    chain = dict(CHAIN_ENTRY.iter_unpack(chain_bytes))
    tree = [data[i : i + 32] for i in range(tree_at, data_at, 32)]
    return SDMFShare(
        seq, root, iv, k, n, segsize, datalen,
        data[HEADER.size:sig_at], data[sig_at:chain_at], chain, tree,
        data[data_at:key_at], data[key_at:eof],
    )  # fmt: skip


def verify_share(share: SDMFShare, shnum: int, fingerprint: bytes) -> None:
    """Check a share's key, signature and hashes; ``IntegrityError`` if forged or
    corrupt. (The block is checked against the block hash tree here too.)"""
    if fingerprint_from_pubkey(share.pubkey) != fingerprint:
        raise IntegrityError("the share's public key does not match the cap's fingerprint")
    try:
        key = load_der_public_key(share.pubkey)
    except ValueError:
        raise IntegrityError("the share's public key cannot be read") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise IntegrityError("the share's public key is not RSA")
    try:
        key.verify(share.signature, share.signed_prefix(), PSS, hashes.SHA256())
    except InvalidSignature:
        raise IntegrityError("the share's signature is not valid") from None
    if shnum >= share.n:
        raise IntegrityError("share number out of range")
    expected_leaf = block_hash(share.block) if share.segsize else merkle.empty_leaf_hash(0)
    if share.block_tree != [expected_leaf]:
        raise IntegrityError("the share's block does not match its block hash tree")
    chain = dict(share.chain)
    leaf_index = next_power_of_two(share.n) - 1 + shnum
    chain[leaf_index] = share.block_tree[0]
    merkle.check_chain(share.root_hash, shnum, share.n, chain, "share hash chain")


def encode_version(
    plaintext: bytes,
    *,
    readkey: bytes,
    private_key: rsa.RSAPrivateKey,
    enc_privkey: bytes,
    seqnum: int,
    iv: bytes,
    k: int,
    n: int,
    encode_segment: object,
) -> list[SDMFShare]:
    """The N shares of one SDMF version (``encode_segment``: a codec's method)."""
    segsize = -(-len(plaintext) // k) * k if plaintext else 0
    crypttext = ctr_cipher(data_key(iv, readkey)).update(plaintext)
    padded = crypttext + bytes(segsize - len(crypttext))
    if segsize:
        blocks = [bytes(b) for b in encode_segment(padded)]  # type: ignore[operator]
        leaves = [block_hash(b) for b in blocks]
    else:
        blocks = [b""] * n
        leaves = [merkle.empty_leaf_hash(0)] * n
    share_tree = merkle.build_tree(leaves)
    root = share_tree[0]
    pubkey = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    prefix = PREFIX.pack(SDMF_VERSION, seqnum, root, iv, k, n, segsize, len(plaintext))
    signature = private_key.sign(prefix, PSS, hashes.SHA256())
    shares = []
    for shnum in range(n):
        chain = {i: share_tree[i] for i in merkle.needed_hashes(shnum, n)}
        fields = (seqnum, root, iv, k, n, segsize, len(plaintext), pubkey, signature)
        shares.append(SDMFShare(*fields, chain, [leaves[shnum]], blocks[shnum], enc_privkey))
    return shares


def decrypt(shares: dict[int, SDMFShare], readkey: bytes, decode: object) -> bytes:
    """The plaintext from k verified shares of one version (``decode``: a codec's)."""
    any_share = next(iter(shares.values()))
    if any_share.segsize == 0:
        return b""
    numbers = sorted(shares)[: any_share.k]
    pieces = decode([shares[s].block for s in numbers], numbers)  # type: ignore[operator]
    crypttext = b"".join(pieces)[: any_share.datalen]
    return ctr_cipher(data_key(any_share.iv, readkey)).update(crypttext)
