"""Directory contents (digest §2.2): the bytes inside a directory's file.

    directory := entry*
    entry     := ns( ns(name) ns(ro_cap) ns(rwcap_field) ns(metadata_json) )

Names are NFC-normalized UTF-8, written sorted. In a mutable directory a
child's write cap is encrypted so that holders of the directory's read cap
cannot see it: ``salt || AES-CTR(key, rw_cap) || mac`` with a deterministic
salt and key derived from the directory's write key, and Tahoe's own
(non-RFC-2104) HMAC. Immutable directories leave the field empty.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from veil.errors import FormatError
from veil.formats.crypto import ctr_cipher
from veil.formats.hashes import tagged_hash, tagged_pair_hash
from veil.formats.netstring import netstring, split_netstrings

TAG_CHILD_SALT = b"allmydata_dirnode_child_rwcap_to_salt_v1"
TAG_CHILD_KEY = b"allmydata_mutable_writekey_and_salt_to_dirnode_child_capkey_v1"


@dataclass(frozen=True)
class Entry:
    """One child: its caps as text (``None`` when absent) and its metadata."""

    ro_cap: str | None
    rw_cap: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def normalize(name: str) -> str:
    name = unicodedata.normalize("NFC", name)
    if not name or "/" in name:
        raise FormatError(f"{name!r} is not a valid name in a directory (empty, or has '/')")
    return name


def tahoe_hmac(key: bytes, message: bytes) -> bytes:
    """Tahoe's HMAC: the key is used unpadded (``util/hashutil.py: hmac``)."""
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)
    return hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).digest()


def encrypt_rw_cap(dir_writekey: bytes, rw_cap: bytes) -> bytes:
    salt = tagged_hash(TAG_CHILD_SALT, rw_cap, 16)
    key = tagged_pair_hash(TAG_CHILD_KEY, salt, dir_writekey, 16)
    crypttext = ctr_cipher(key).update(rw_cap)
    return salt + crypttext + tahoe_hmac(key, salt + crypttext)


def decrypt_rw_cap(dir_writekey: bytes, field_bytes: bytes) -> bytes:
    if len(field_bytes) < 48:
        raise FormatError("an encrypted child write cap is at least 48 bytes")
    salt, crypttext = field_bytes[:16], field_bytes[16:-32]
    key = tagged_pair_hash(TAG_CHILD_KEY, salt, dir_writekey, 16)
    return ctr_cipher(key).update(crypttext)  # readers ignore the MAC, as Tahoe's do


def pack(entries: Mapping[str, Entry], dir_writekey: bytes | None) -> bytes:
    """Serialize; ``dir_writekey`` None makes an immutable directory's bytes."""
    out = []
    normalized = {normalize(n): e for n, e in entries.items()}
    for name in sorted(normalized):
        entry = normalized[name]
        ro = (entry.ro_cap or "").removeprefix("ro.").encode("utf-8")
        if dir_writekey is None:
            if entry.rw_cap:
                raise FormatError(f"{name}: an immutable directory cannot hold a write cap")
            rw_field = b""
        else:
            rw_field = encrypt_rw_cap(dir_writekey, (entry.rw_cap or "").encode("utf-8"))
        meta = json.dumps(entry.metadata).encode("utf-8")
        body = netstring(name.encode("utf-8")) + netstring(ro) + netstring(rw_field)
        out.append(netstring(body + netstring(meta)))
    return b"".join(out)


def _netstrings(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        colon = data.find(b":", pos)
        if colon < 0 or colon - pos > 20 or not data[pos:colon].isdigit():
            raise FormatError("malformed directory entry length")
        end = colon + 1 + int(data[pos:colon])
        if end >= len(data) or data[end : end + 1] != b",":
            raise FormatError("malformed directory entry")
        yield data[colon + 1 : end]
        pos = end + 1


def unpack(data: bytes, dir_writekey: bytes | None) -> dict[str, Entry]:
    """Parse; write caps are decrypted only when ``dir_writekey`` is given."""
    entries: dict[str, Entry] = {}
    for raw in _netstrings(data):
        name_b, ro_b, rw_field, meta_b = split_netstrings(raw, 4)
        try:
            name = normalize(name_b.decode("utf-8"))
            metadata = json.loads(meta_b.decode("utf-8")) if meta_b else {}
        except (UnicodeDecodeError, ValueError):
            raise FormatError("a directory entry has a bad name or metadata") from None
        if not isinstance(metadata, dict):
            raise FormatError("directory entry metadata is not a JSON object")
        rw = None
        if dir_writekey is not None and rw_field:
            rw = decrypt_rw_cap(dir_writekey, rw_field).rstrip(b" ").decode("utf-8", "replace")
        ro = ro_b.rstrip(b" ").decode("utf-8", "replace")
        entries[name] = Entry(ro or None, rw or None, metadata)
    return entries
