"""Tagged SHA-256d hashes and every tag Tahoe-LAFS 1.20 uses (digest §2, §7).

``tagged_hash(tag, val) = SHA256d(ns(tag) || val)``; pair hashes wrap both
values as netstrings. Truncation applies to the final digest only.
"""

from __future__ import annotations

import hashlib
from typing import Final

from veil.formats.netstring import netstring

STORAGE_INDEX_TAG: Final = b"allmydata_immutable_key_to_storage_index_v1"
CONVERGENT_ENCRYPTION_TAG: Final = b"allmydata_immutable_content_to_key_with_added_secret_v1+"
BLOCK_TAG: Final = b"allmydata_encoded_subshare_v1"
CIPHERTEXT_SEGMENT_TAG: Final = b"allmydata_crypttext_segment_v1"
CIPHERTEXT_TAG: Final = b"allmydata_crypttext_v1"
UEB_TAG: Final = b"allmydata_uri_extension_v1"
MERKLE_INTERNAL_TAG: Final = b"Merkle tree internal node"
MERKLE_EMPTY_LEAF_TAG: Final = b"Merkle tree empty leaf"

CLIENT_RENEWAL_TAG: Final = b"allmydata_client_renewal_secret_v1"
CLIENT_CANCEL_TAG: Final = b"allmydata_client_cancel_secret_v1"
FILE_RENEWAL_TAG: Final = b"allmydata_file_renewal_secret_v1"
FILE_CANCEL_TAG: Final = b"allmydata_file_cancel_secret_v1"
BUCKET_RENEWAL_TAG: Final = b"allmydata_bucket_renewal_secret_v1"
BUCKET_CANCEL_TAG: Final = b"allmydata_bucket_cancel_secret_v1"

KEY_LENGTH: Final = 16
HASH_LENGTH: Final = 32


def sha256d(data: bytes, truncate: int = 0) -> bytes:
    """SHA256(SHA256(data)), optionally cut to ``truncate`` bytes."""
    digest = hashlib.sha256(hashlib.sha256(data).digest()).digest()
    return digest[:truncate] if truncate else digest


def tagged_hash(tag: bytes, value: bytes, truncate: int = 0) -> bytes:
    return sha256d(netstring(tag) + value, truncate)


def tagged_pair_hash(tag: bytes, a: bytes, b: bytes, truncate: int = 0) -> bytes:
    return sha256d(netstring(tag) + netstring(a) + netstring(b), truncate)


class TaggedHasher:
    """Streaming tagged SHA-256d: feed ``ns(tag)`` first, then the data."""

    def __init__(self, tag: bytes, truncate: int = 0) -> None:
        self._inner = hashlib.sha256(netstring(tag))
        self._truncate = truncate

    def update(self, data: bytes | memoryview) -> None:
        self._inner.update(data)

    def digest(self) -> bytes:
        d = hashlib.sha256(self._inner.digest()).digest()
        return d[: self._truncate] if self._truncate else d


def block_hash(block: bytes | memoryview) -> bytes:
    h = TaggedHasher(BLOCK_TAG)
    h.update(block)
    return h.digest()


def crypttext_segment_hash(segment: bytes | memoryview) -> bytes:
    h = TaggedHasher(CIPHERTEXT_SEGMENT_TAG)
    h.update(segment)
    return h.digest()


def ueb_hash(ueb: bytes) -> bytes:
    return tagged_hash(UEB_TAG, ueb)


def storage_index_from_readkey(readkey: bytes) -> bytes:
    """The 16-byte storage index of an immutable file (digest §1.6)."""
    return tagged_hash(STORAGE_INDEX_TAG, readkey, KEY_LENGTH)


def convergence_hasher(k: int, n: int, segment_size: int, secret: bytes) -> TaggedHasher:
    """Hasher that yields the convergent read key of a plaintext (digest §1.7)."""
    if not 1 <= k <= n <= 256:
        raise ValueError(f"bad encoding parameters k={k} n={n}")
    params = b"%d,%d,%d" % (k, n, segment_size)
    tag = CONVERGENT_ENCRYPTION_TAG + netstring(secret) + netstring(params)
    return TaggedHasher(tag, KEY_LENGTH)


# -- lease secrets (digest §7) ------------------------------------------------


def client_renewal_secret(lease_secret: bytes) -> bytes:
    return tagged_hash(lease_secret, CLIENT_RENEWAL_TAG)  # tag and value swapped, as Tahoe does


def client_cancel_secret(lease_secret: bytes) -> bytes:
    return tagged_hash(lease_secret, CLIENT_CANCEL_TAG)


def file_renewal_secret(client_renew: bytes, storage_index: bytes) -> bytes:
    return tagged_pair_hash(FILE_RENEWAL_TAG, client_renew, storage_index)


def file_cancel_secret(client_cancel: bytes, storage_index: bytes) -> bytes:
    return tagged_pair_hash(FILE_CANCEL_TAG, client_cancel, storage_index)


def bucket_renewal_secret(file_renew: bytes, lease_seed: bytes) -> bytes:
    return tagged_pair_hash(BUCKET_RENEWAL_TAG, file_renew, lease_seed)


def bucket_cancel_secret(file_cancel: bytes, lease_seed: bytes) -> bytes:
    return tagged_pair_hash(BUCKET_CANCEL_TAG, file_cancel, lease_seed)


def lease_secrets_for(
    lease_secret: bytes, storage_index: bytes, lease_seed: bytes
) -> tuple[bytes, bytes]:
    """The (renew, cancel) secrets a client sends one server for one file."""
    renew = bucket_renewal_secret(
        file_renewal_secret(client_renewal_secret(lease_secret), storage_index), lease_seed
    )
    cancel = bucket_cancel_secret(
        file_cancel_secret(client_cancel_secret(lease_secret), storage_index), lease_seed
    )
    return renew, cancel


def permute_server_hash(storage_index: bytes, permutation_seed: bytes) -> bytes:
    """Sort key of a server on the permuted ring: plain SHA-1 (digest §4.2)."""
    return hashlib.sha1(storage_index + permutation_seed).digest()
