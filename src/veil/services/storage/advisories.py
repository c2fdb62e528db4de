"""Corruption advisories: what a server keeps of clients' corruption reports.

Tahoe 1.20 (allmydata/storage/server.py ``advise_corrupt_share``) writes one
file per report into ``corruption-advisories/`` whenever the report fits in
the available space (disk free minus ``reserved_space``), with no other bound,
and logs each one. Anyone holding the server's NURL can send them, so here
they are bounded as well:

- a reason is kept up to ``MAX_REASON`` characters;
- at most ``MAX_PER_SHARE`` reports per share are kept while the server runs;
- all reports on disk together stay under ``ADVISORY_BUDGET`` bytes (what is
  already there when the server starts counts);
- a report must fit in the space the server announces, as in Tahoe, so
  advisories never eat into ``reserved_space``.

Beyond that a report is accepted (the client learns nothing new) and dropped;
the first drop is logged in one line, the rest are only counted.

Not for: where reports are stored (``veil.services.storage.backend``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from veil.formats import base32
from veil.services.storage.backend import Backend

log = logging.getLogger(__name__)

MAX_REASON = 2000
MAX_PER_SHARE = 4
ADVISORY_BUDGET = 1024 * 1024
REPORT_OVERHEAD = 128  # what a report adds to its reason (names, headers, newlines)


class Advisories:
    """The bounded record of one server's corruption advisories."""

    def __init__(self, backend: Backend, available_space: Callable[[], int]) -> None:
        self.backend = backend
        self.available_space = available_space
        self.used = backend.corruption_advisory_bytes()
        self.dropped = 0
        self._per_share: dict[tuple[bytes, int], int] = {}

    def record(self, storage_index: bytes, share_number: int, reason: str) -> bool:
        """Keep a report if the bounds allow; return whether it was kept."""
        reason = reason[:MAX_REASON]
        size = len(reason.encode("utf-8", "replace")) + REPORT_OVERHEAD
        key = (storage_index, share_number)
        where = f"{base32.b2a(storage_index)[:8]}-sh{share_number}"
        if self._per_share.get(key, 0) >= MAX_PER_SHARE:
            return self._drop(f"{MAX_PER_SHARE} reports on share {where} already")
        if self.used + size > ADVISORY_BUDGET:
            return self._drop(f"the {ADVISORY_BUDGET} bytes kept for advisories are used")
        if size > self.available_space():
            return self._drop("no space beyond reserved_space")
        self.backend.add_corruption_advisory(storage_index, share_number, reason)
        self.used += size
        self._per_share[key] = self._per_share.get(key, 0) + 1
        log.warning("a client reports share %s corrupt: %r", where, reason[:100])
        return True

    def _drop(self, why: str) -> bool:
        if not self.dropped:
            log.warning("corruption advisory dropped (%s); further drops are not logged", why)
        self.dropped += 1
        return False
