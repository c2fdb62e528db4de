"""The server side of veil's batch extension, over any ``StorageService``.

Each batched item is carried out through the same calls a standard client
makes (``allocate_buckets`` then one whole-share ``write_share_chunk`` per
allocated share), so secrets, leases, size limits, space accounting and
conflict checks are exactly those of the standard protocol. A share that
cannot be completed is aborted, so a batch leaves every share either complete
or absent; an item refused as a whole (bad secret, read-only server, no
space) is reported with its status and the other items go on.

The mutable read (``run_mutable_read_batch``) is the share listing and one
ranged read per share, in one call of the core.

Not here: the wire format (``veil.formats.wire_batch``) or HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from veil.errors import NotFound, StorageError
from veil.formats.wire_batch import MAX_BATCH_SHARE, BatchUpload, BatchUploadResult
from veil.services.interfaces import StorageService

log = logging.getLogger(__name__)


def run_upload_batch(
    service: StorageService, items: list[BatchUpload], account: int = 0
) -> list[BatchUploadResult]:
    """Allocate and write every item's whole shares for ``account``; one result per item
    (an item over the account's quota is refused with its status and reason)."""
    results, flush = run_upload_batch_deferred(service, items, account)
    flush()
    return results


def run_upload_batch_deferred(
    service: StorageService, items: list[BatchUpload], account: int = 0
) -> tuple[list[BatchUploadResult], Callable[[], None]]:
    """As ``run_upload_batch``, and the function that makes the written shares
    durable: the caller runs it (in another thread, say, while this one takes the
    next batch) and answers only after it returns."""
    with service.deferred_flush() as flush:
        return [_upload_item(service, item, account) for item in items], flush


def _upload_item(service: StorageService, item: BatchUpload, account: int) -> BatchUploadResult:
    try:
        alloc = service.allocate_buckets(
            item.storage_index,
            frozenset(item.shares),
            item.allocated_size,
            renew_secret=item.renew_secret,
            cancel_secret=item.cancel_secret,
            upload_secret=item.upload_secret,
            account=account,
        )
    except StorageError as exc:
        return BatchUploadResult(status=exc.status, reason=str(exc))
    written = set()
    for shnum in sorted(alloc.allocated):
        try:
            done = service.write_share_chunk(
                item.storage_index,
                shnum,
                0,
                item.shares[shnum],
                upload_secret=item.upload_secret,
            ).complete
        except StorageError as exc:
            log.info("batched share %d not written: %s", shnum, exc)
            done = False
        if done:
            written.add(shnum)
        else:
            _abort(service, item, shnum)
    return BatchUploadResult(alloc.already_have, frozenset(written))


def _abort(service: StorageService, item: BatchUpload, shnum: int) -> None:
    try:
        service.abort_upload(item.storage_index, shnum, upload_secret=item.upload_secret)
    except StorageError:
        pass  # already gone


def run_read_batch(
    service: StorageService, storage_indexes: list[bytes]
) -> list[dict[int, bytes | int]]:
    """Per storage index: whole shares up to ``MAX_BATCH_SHARE``, lengths of larger ones."""
    answers: list[dict[int, bytes | int]] = []
    for si in storage_indexes:
        found: dict[int, bytes | int] = {}
        try:
            shares = service.list_shares(si)
        except NotFound:
            shares = frozenset()
        for shnum in sorted(shares):
            try:
                length = service.share_length(si, shnum)
                if length <= MAX_BATCH_SHARE:
                    found[shnum] = service.read_share_chunk(si, shnum, 0, length)
                else:
                    found[shnum] = length
            except StorageError as exc:  # gone meanwhile, or unreadable: leave it out
                log.info("batched read of share %d skipped: %s", shnum, exc)
        answers.append(found)
    return answers


def run_mutable_read_batch(
    service: StorageService, storage_index: bytes, length: int
) -> dict[int, bytes]:
    """The first ``length`` bytes of every mutable share of ``storage_index``, all
    in one call of the core (so no write falls between them)."""
    found: dict[int, bytes] = {}
    for shnum in sorted(service.mutable_list_shares(storage_index)):
        try:
            found[shnum] = service.mutable_read(storage_index, shnum, 0, length)
        except StorageError as exc:  # gone meanwhile, or unreadable: leave it out
            log.info("batched mutable read of share %d skipped: %s", shnum, exc)
    return found
