"""An immutable share being uploaded to S3: parts sent as the bytes arrive.

Chunks are kept in an unnamed spool file (``tempfile.TemporaryFile``: gone
when closed or when the process dies) so overlapping rewrites can be compared
(the core's conflict check reads them back). Whenever the bytes written from
offset 0 on without a gap reach another ``part_size``, that part is sent to a
multipart upload in the background (at most ``MAX_IN_FLIGHT`` at once) while
the client sends the next chunk. ``finalize`` stores the lease records, sends
the last part and completes the upload: only then does the object exist, so
an unfinished share is never listed nor served. A share no larger than one
part is sent with one PUT at ``finalize``. ``abort`` (and any failure) aborts
the multipart upload; a server that died leaves an unfinished upload that the
next start aborts (``S3Backend``), and S3 never lists those as objects.

A part that fails makes the share fail: every later write and ``finalize``
raises the same ``OSError``, which the HTTP layer answers with 507.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.formats.container import Lease, pack_leases

if TYPE_CHECKING:
    from veil.adapters.storage.s3 import S3Backend

log = logging.getLogger("veil.storage.s3")
MAX_IN_FLIGHT = 2
MAX_PARTS = 9_000  # S3's limit is 10,000
MIB = 1024 * 1024


class S3IncomingShare:
    def __init__(
        self, backend: S3Backend, si: bytes, shnum: int, allocated_size: int, spool: Path | None
    ) -> None:
        self._backend = backend
        self._s3 = backend.s3
        self._where = (si, shnum)
        self.key = backend.share_key(si, shnum)
        self.allocated_size = allocated_size
        # S3 allows 10,000 parts: very large shares get larger parts (whole MiB)
        self._part_size = max(backend.part_size, -(-allocated_size // MAX_PARTS // MIB) * MIB)
        self._spool = tempfile.TemporaryFile(dir=spool)  # noqa: SIM115 - closed by finalize/abort
        self._intervals: list[tuple[int, int]] = []  # written ranges, merged
        self._sent = 0  # bytes [0, _sent) are in parts sent or being sent
        self._upload_id: str | None = None
        self._parts: list[concurrent.futures.Future[Any]] = []
        self._failure: OSError | None = None

    # -- the spool ------------------------------------------------------------

    def write(self, offset: int, data: bytes | memoryview) -> None:
        self._raise_failure()
        view = memoryview(data)
        pos = offset
        while view:
            n = os.pwrite(self._spool.fileno(), view, pos)
            view, pos = view[n:], pos + n
        self._add_interval(offset, offset + len(data))
        self._send_full_parts()

    def read(self, offset: int, length: int) -> bytes:
        self._raise_failure()
        return os.pread(self._spool.fileno(), length, offset)

    def _add_interval(self, begin: int, end: int) -> None:
        merged: list[tuple[int, int]] = []
        for b, e in sorted([*self._intervals, (begin, end)]):
            if merged and b <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((b, e))
        self._intervals = merged

    def _contiguous(self) -> int:
        if self._intervals and self._intervals[0][0] == 0:
            return self._intervals[0][1]
        return 0

    # -- parts ----------------------------------------------------------------

    def _send_full_parts(self) -> None:
        if self.allocated_size <= self._part_size:
            return  # one PUT at finalize
        # the last part (whatever is left at the end) is sent by finalize
        while self._contiguous() - self._sent >= self._part_size and (
            self.allocated_size - self._sent > self._part_size
        ):
            self._send_part(self._sent, self._sent + self._part_size)

    def _send_part(self, begin: int, end: int) -> None:
        if self._upload_id is None:
            answer = self._s3.call("create_multipart_upload", Key=self.key)
            self._upload_id = str(answer["UploadId"])
        self._wait_for_room(MAX_IN_FLIGHT - 1)
        body = os.pread(self._spool.fileno(), end - begin, begin)
        number = len(self._parts) + 1
        self._parts.append(
            self._s3.submit(
                "upload_part", Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
            )
        )
        self._sent = end

    def _wait_for_room(self, allowed: int) -> None:
        """Wait until at most ``allowed`` parts are still being sent."""
        pending = [f for f in self._parts if not f.done()]
        for future in pending[: max(0, len(pending) - allowed)]:
            self._outcome(future)
        for future in self._parts:
            if future.done():
                self._outcome(future)

    def _outcome(self, future: concurrent.futures.Future[Any]) -> Any:
        try:
            return future.result()
        except OSError as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: OSError) -> None:
        if self._failure is None:
            self._failure = exc
            log.error("upload of a share to S3 failed: %s", exc)
            self._discard()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # -- the end --------------------------------------------------------------

    def finalize(self, leases: list[Lease]) -> None:
        self._raise_failure()
        try:
            # the lease records first: a complete share always has them
            self._s3.call(
                "put_object", Key=self._backend.lease_key(*self._where), Body=pack_leases(leases)
            )
            if self.allocated_size <= self._part_size:
                body = os.pread(self._spool.fileno(), self.allocated_size, 0)
                self._s3.call(
                    "put_object", Key=self.key, Body=body.ljust(self.allocated_size, b"\0")
                )
            else:
                # parts not sent yet (chunks came out of order), then the last one
                while self.allocated_size - self._sent > self._part_size:
                    self._send_part(self._sent, self._sent + self._part_size)
                self._send_part(self._sent, self.allocated_size)
                parts = [
                    {"PartNumber": i + 1, "ETag": self._outcome(f)["ETag"]}
                    for i, f in enumerate(self._parts)
                ]
                self._s3.call(
                    "complete_multipart_upload",
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
                self._upload_id = None
        except OSError as exc:
            self._fail(exc)
            raise
        self._backend.share_finished(self._where, self.allocated_size, leases)
        self._spool.close()

    def abort(self) -> None:
        self._discard()

    def _discard(self) -> None:
        for future in self._parts:
            future.cancel()
        with contextlib.suppress(concurrent.futures.CancelledError, OSError):
            concurrent.futures.wait(self._parts, timeout=60)
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            try:
                self._s3.call("abort_multipart_upload", Key=self.key, UploadId=upload_id)
            except OSError as exc:  # the next start aborts it
                log.warning("could not abort an unfinished S3 upload (retried at start): %s", exc)
        self._spool.close()
