"""Shares in an S3 bucket (AWS, MinIO, Ceph, SeaweedFS, Garage): a ``Backend``.

Keys, under ``[storage] s3.prefix`` (SI in Tahoe's base32, ``ab`` its first
two characters, as on disk):

    PREFIX/shares/ab/SI/SHNUM       a finished immutable share's data (no header)
    PREFIX/leases/ab/SI/SHNUM       its lease records (Tahoe's 72-byte v2 records)
    PREFIX/slots/ab/SI/SHNUM        a mutable container, byte for byte Tahoe's
    PREFIX/corruption-advisories/TIME--SI-SHNUM-RANDOM   reports

Everything a server needs to serve its shares and leases is in the bucket: a
new server started from a copy of ``private/`` (which holds the swissnum and
the S3 credentials) and the same bucket serves all of it. Immutable uploads
are in ``veil.adapters.storage.s3_incoming`` (multipart, visible only when
complete; unfinished uploads under the prefix are aborted here at start).
Mutable slots are in ``veil.adapters.storage.s3_slots``.

The storage core calls this synchronously from its worker thread; the S3
client is aiobotocore on a loop of its own (``veil.adapters.storage.s3_client``).
Caches (share lengths, lease records, small slots) are write-through and
rely on one server owning its prefix; conditional writes catch a second one.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from veil.adapters.storage.s3_client import (
    LRU,
    S3Connection,
    S3Error,
    S3Missing,
    S3Settings,
    share_numbers,
)
from veil.adapters.storage.s3_incoming import S3IncomingShare
from veil.adapters.storage.s3_slots import S3Slots
from veil.errors import FormatError
from veil.formats import base32
from veil.formats.container import Lease, parse_leases
from veil.services.storage.backend import report_unreadable

log = logging.getLogger("veil.storage.s3")
PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part but the last
ANNOUNCED_SPACE = 2**50  # a bucket has no size to report: 1 PiB
READ_AHEAD = 2 * 1024 * 1024  # a read fetches at least this much; the rest serves the next


class S3Backend(S3Slots):
    """A ``Backend`` whose shares live under one prefix of one bucket."""

    def __init__(
        self,
        settings: S3Settings,
        *,
        spool_dir: Path | None = None,
        part_size: int = PART_SIZE,
        connection: S3Connection | None = None,
    ) -> None:
        """Connects, checks the bucket can be reached, and aborts unfinished uploads
        under the prefix (uploads of a server that stopped never complete).
        ``spool_dir``: where incoming chunks wait (default: the system's temp)."""
        if part_size < MIN_PART_SIZE:
            raise ValueError("S3 parts are at least 5 MiB")
        self.settings = settings
        self.prefix = settings.key_prefix
        self.part_size = part_size
        self.spool_dir = spool_dir
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.s3 = connection or S3Connection(settings)
        self._lengths: LRU[tuple[bytes, int], int] = LRU(100_000)
        self._leases: LRU[tuple[bytes, int], list[Lease]] = LRU(10_000)
        self._read_ahead: LRU[tuple[bytes, int], tuple[int, bytes]] = LRU(16)
        self._advisory_bytes: int | None = None
        super().__init__()
        try:
            self.s3.call("head_bucket")
            self.aborted_at_start = self._abort_unfinished()
        except BaseException:
            self.s3.close()
            raise

    def close(self) -> None:
        self.s3.close()

    # -- keys -----------------------------------------------------------------

    def _dir(self, kind: str, si: bytes) -> str:
        s = base32.b2a(si)
        return f"{self.prefix}{kind}/{s[:2]}/{s}/"

    def share_key(self, si: bytes, shnum: int) -> str:
        return self._dir("shares", si) + str(shnum)

    def lease_key(self, si: bytes, shnum: int) -> str:
        return self._dir("leases", si) + str(shnum)

    def slot_key(self, si: bytes, shnum: int) -> str:
        return self._dir("slots", si) + str(shnum)

    def _abort_unfinished(self) -> int:
        """Abort every multipart upload left under the prefix; return how many."""
        aborted, markers = 0, dict[str, str]()
        while True:
            page = self.s3.call("list_multipart_uploads", Prefix=self.prefix + "shares/", **markers)
            for upload in page.get("Uploads", ()):
                try:
                    self.s3.call(
                        "abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
                except S3Missing:
                    continue
            if not page.get("IsTruncated"):
                break
            markers = {
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }
        if aborted:
            log.info("aborted %d unfinished S3 upload(s) left by an earlier run", aborted)
        return aborted

    # -- immutable shares -----------------------------------------------------

    def list_shares(self, storage_index: bytes) -> frozenset[int]:
        return share_numbers(self.s3.list_keys(self._dir("shares", storage_index)))

    def create_incoming(
        self, storage_index: bytes, share_number: int, allocated_size: int
    ) -> S3IncomingShare:
        return S3IncomingShare(self, storage_index, share_number, allocated_size, self.spool_dir)

    def share_finished(self, where: tuple[bytes, int], length: int, leases: list[Lease]) -> None:
        """Called by an incoming share once its object exists."""
        self._lengths.put(where, length)
        self._leases.put(where, list(leases))

    def share_length(self, storage_index: bytes, share_number: int) -> int:
        where = (storage_index, share_number)
        known = self._lengths.get(where)
        if known is not None:
            return known
        try:
            head = self.s3.call("head_object", Key=self.share_key(*where))
        except S3Missing:
            raise KeyError(share_number) from None
        length = int(head["ContentLength"])
        self._lengths.put(where, length)
        return length

    def read_share(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        """A range of a share; one ranged GET of at least ``READ_AHEAD`` bytes, whose
        rest answers the reads that follow (clients read a share in order)."""
        where = (storage_index, share_number)
        total = self.share_length(*where)
        length = max(0, min(length, total - offset))
        if length == 0:
            return b""
        kept = self._read_ahead.get(where)
        if kept is not None and kept[0] <= offset and offset + length <= kept[0] + len(kept[1]):
            start = offset - kept[0]
            return kept[1][start : start + length]
        fetch = min(total - offset, max(length, READ_AHEAD))
        try:
            body, _, _ = self.s3.get_bytes(
                self.share_key(*where), f"bytes={offset}-{offset + fetch - 1}"
            )
        except S3Missing:
            self._lengths.drop(where)
            raise KeyError(share_number) from None
        if fetch > length:
            self._read_ahead.put(where, (offset, body))
        return body[:length]

    def uses_hashed_leases(self, storage_index: bytes, share_number: int) -> bool:
        self.share_length(storage_index, share_number)  # KeyError when there is none
        return True

    def get_leases(self, storage_index: bytes, share_number: int) -> list[Lease]:
        where = (storage_index, share_number)
        known = self._leases.get(where)
        if known is not None:
            return list(known)
        self.share_length(*where)
        try:
            raw, _, _ = self.s3.get_bytes(self.lease_key(*where))
            leases = parse_leases(raw, hashed=True)
        except S3Missing:
            leases = []  # a share put in the bucket by hand: no leases yet
        except FormatError as exc:
            report_unreadable(self, storage_index, share_number, f"lease records: {exc}")
            leases = []
        self._leases.put(where, leases)
        return list(leases)

    def set_leases(self, storage_index: bytes, share_number: int, leases: list[Lease]) -> None:
        where = (storage_index, share_number)
        self.share_length(*where)
        self._leases.drop(where)
        body = b"".join(lease.pack() for lease in leases)
        self.s3.call("put_object", Key=self.lease_key(*where), Body=body)
        self._leases.put(where, list(leases))

    def delete_share(self, storage_index: bytes, share_number: int) -> None:
        """Remove a finished share and its lease records (lease expiry)."""
        where = (storage_index, share_number)
        self._lengths.drop(where)
        self._leases.drop(where)
        self._read_ahead.drop(where)
        self.s3.call("delete_object", Key=self.share_key(*where))
        self.s3.call("delete_object", Key=self.lease_key(*where))

    def storage_indexes(self) -> list[bytes]:
        """Every storage index with an immutable share or a slot (a full listing)."""
        out = set()
        for kind in ("shares", "slots"):
            for key, _ in self.s3.list_keys(f"{self.prefix}{kind}/"):
                parts = key[len(self.prefix) :].split("/")
                if len(parts) == 4:
                    try:
                        out.add(base32.a2b(parts[2]))
                    except (ValueError, FormatError):
                        continue
        return sorted(out)

    # -- reports and space ----------------------------------------------------

    def add_corruption_advisory(self, storage_index: bytes, share_number: int, reason: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime())
        si = base32.b2a(storage_index)
        key = (
            f"{self.prefix}corruption-advisories/{stamp}--{si}-{share_number}-{os.urandom(4).hex()}"
        )
        text = f"storage_index: {si}\nshare_number: {share_number}\n\n{reason}\n".encode()
        total = self.corruption_advisory_bytes()
        self.s3.call("put_object", Key=key, Body=text)
        self._advisory_bytes = total + len(text)

    def corruption_advisory_bytes(self) -> int:
        if self._advisory_bytes is None:
            keys = self.s3.list_keys(f"{self.prefix}corruption-advisories/")
            self._advisory_bytes = sum(size for _, size in keys)
        return self._advisory_bytes

    def free_space(self) -> int:
        return ANNOUNCED_SPACE


__all__ = ["S3Backend", "S3Error", "S3Settings"]
