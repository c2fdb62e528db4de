"""Mutable slots in S3: whole-object writes, conditional on what was read.

S3 cannot change part of an object, so ``write_slot`` reads the container
(from a write-through cache of small slots, else from S3), applies the writes
and PUTs the whole container back. Atomicity per slot comes from both:

- the server's lock per storage index (``veil.services.storage.mutable_store``)
  orders every test-and-write of a slot within the server;
- each PUT is conditional (``If-Match`` the ETag that was read, or
  ``If-None-Match: *`` for a new slot), so a write that raced anything else
  (a second server on the same prefix, a stale cache) is refused with an
  ``OSError`` instead of losing the other write; the cache is then dropped.

A PUT replaces an object atomically: a server (veil's or S3's) that stops in
the middle of a write leaves the old container or the new one, never a mix.
Stores that ignore the conditions (older MinIO, Ceph) still get the lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veil.adapters.storage.s3_client import LRU, S3BadRange, S3Conflict, S3Missing, share_numbers

if TYPE_CHECKING:
    from veil.adapters.storage.s3_client import S3Connection

CACHED_SLOT = 4 * 1024 * 1024  # slots up to this size are cached whole
CACHED_SLOTS = 2048


class _Slot:
    __slots__ = ("data", "etag")

    def __init__(self, data: bytes, etag: str) -> None:
        self.data = data
        self.etag = etag


class S3Slots:
    """The slot half of ``S3Backend`` (it brings ``s3``, ``slot_key`` and ``_dir``)."""

    s3: S3Connection

    def __init__(self) -> None:
        self._slots: LRU[tuple[bytes, int], _Slot] = LRU(CACHED_SLOTS)

    def slot_key(self, si: bytes, shnum: int) -> str:
        raise NotImplementedError

    def _dir(self, kind: str, si: bytes) -> str:
        raise NotImplementedError

    def _load(self, si: bytes, shnum: int) -> _Slot | None:
        """The slot, cached when small; None when it is too large to cache.
        ``KeyError`` when it does not exist. One GET either way."""
        where = (si, shnum)
        cached = self._slots.get(where)
        if cached is not None:
            return cached
        key = self.slot_key(si, shnum)
        try:
            data, etag, size = self.s3.get_bytes(key, f"bytes=0-{CACHED_SLOT - 1}")
        except S3Missing:
            raise KeyError(shnum) from None
        except S3BadRange:  # an empty object
            data, etag, size = b"", "", 0
        if size > CACHED_SLOT:
            return None
        slot = _Slot(data, etag)
        self._slots.put(where, slot)
        return slot

    def list_slots(self, storage_index: bytes) -> frozenset[int]:
        return share_numbers(self.s3.list_keys(self._dir("slots", storage_index)))

    def read_slot(self, storage_index: bytes, share_number: int, offset: int, length: int) -> bytes:
        slot = self._load(storage_index, share_number)
        if slot is not None:
            return slot.data[offset : offset + length]
        if length <= 0:
            return b""
        key = self.slot_key(storage_index, share_number)
        try:
            data, _, _ = self.s3.get_bytes(key, f"bytes={offset}-{offset + length - 1}")
        except S3Missing:
            raise KeyError(share_number) from None
        except S3BadRange:
            return b""
        return data

    def write_slot(
        self, storage_index: bytes, share_number: int, writes: list[tuple[int, bytes]]
    ) -> None:
        where = (storage_index, share_number)
        key = self.slot_key(storage_index, share_number)
        try:
            slot = self._load(storage_index, share_number)
            if slot is None:
                data, etag, _ = self.s3.get_bytes(key)
                slot = _Slot(data, etag)
            content, condition = bytearray(slot.data), {"IfMatch": slot.etag}
        except KeyError:
            content, condition = bytearray(), {"IfNoneMatch": "*"}
        for offset, chunk in writes:
            if len(content) < offset:
                content.extend(bytes(offset - len(content)))
            content[offset : offset + len(chunk)] = chunk
        body = bytes(content)
        self._slots.drop(where)
        answer: Any
        try:
            answer = self.s3.call("put_object", Key=key, Body=body, **condition)
        except S3Conflict:
            raise S3Conflict(
                f"the mutable share changed in S3 while this server wrote it ({key}): "
                "is a second server using the same bucket and prefix?"
            ) from None
        if len(body) <= CACHED_SLOT and answer.get("ETag"):
            self._slots.put(where, _Slot(body, str(answer["ETag"])))

    def delete_slot(self, storage_index: bytes, share_number: int) -> None:
        self._slots.drop((storage_index, share_number))
        self.s3.call("delete_object", Key=self.slot_key(storage_index, share_number))
