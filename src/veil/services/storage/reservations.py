"""Space held by immutable uploads in progress: how much, and for how long.

What Tahoe 1.20 does (allmydata/storage/server.py and immutable.py):
``allocate_buckets`` subtracts the *whole* allocated size of every open
``BucketWriter``, written or not, from the disk's free space minus
``reserved_space``; the version's ``available-space`` subtracts none of them;
a ``BucketWriter`` is aborted after 30 minutes without a write. So there one
allocate naming a large size keeps every later allocation out for 30 minutes.

Here, so that reserving without writing is bounded and short-lived:

- an upload holds only what it still has to write (allocated minus written;
  written bytes are on disk already), and only while it is *live*: allocated
  or written to within ``RESERVATION_IDLE`` seconds. An idle upload keeps its
  data and may still finish within ``UPLOAD_IDLE_TIMEOUT`` (Tahoe's 30
  minutes); it holds space again from its next write;
- uploads that have not written a byte hold together at most
  ``1 / FRESH_SHARE_OF_SPACE`` of the space, so allocating without writing
  never takes it all;
- the advertised available space subtracts only what live uploads that have
  written hold (Tahoe subtracts nothing there);
- at most ``MAX_UPLOADS`` uploads are open; idle ones give way to new ones.

Not for: the uploads' data (``veil.services.storage.backend``) or the protocol rules
(``veil.services.storage.server``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from veil.formats.container import Lease
from veil.services.interfaces import ByteRange, StorageIndex
from veil.services.storage.backend import IncomingShare

UPLOAD_IDLE_TIMEOUT = 30 * 60  # then the upload is aborted, as Tahoe's BucketWriter
RESERVATION_IDLE = 60.0  # then an upload stops holding space until it writes again
FRESH_SHARE_OF_SPACE = 2  # unwritten uploads hold at most half of the space
MAX_UPLOADS = 1000

Key = tuple[StorageIndex, int]


@dataclass
class Upload:
    secret: bytes
    incoming: IncomingShare
    allocated_size: int
    lease: Lease
    last_activity: float
    written: list[tuple[int, int]] = field(default_factory=list)  # sorted, merged [b, e)

    @property
    def written_bytes(self) -> int:
        return sum(e - b for b, e in self.written)

    def missing(self) -> tuple[ByteRange, ...]:
        out, pos = [], 0
        for b, e in self.written:
            if b > pos:
                out.append(ByteRange(pos, b))
            pos = max(pos, e)
        if pos < self.allocated_size:
            out.append(ByteRange(pos, self.allocated_size))
        return tuple(out)

    def overlaps(self, begin: int, end: int) -> list[tuple[int, int]]:
        return [(max(b, begin), min(e, end)) for b, e in self.written if b < end and e > begin]

    def add(self, begin: int, end: int) -> None:
        merged: list[tuple[int, int]] = []
        for b, e in sorted([*self.written, (begin, end)]):
            if merged and b <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((b, e))
        self.written = merged

    def holds(self, now: float) -> int:
        """The space this upload keeps from others now."""
        if now - self.last_activity > RESERVATION_IDLE:
            return 0
        return self.allocated_size - self.written_bytes


class Uploads:
    """The open uploads of one server and the space they hold."""

    def __init__(self) -> None:
        self._open: dict[Key, Upload] = {}

    def __contains__(self, key: Key) -> bool:
        return key in self._open

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Upload]:
        return iter(list(self._open.values()))

    def get(self, key: Key) -> Upload | None:
        return self._open.get(key)

    def add(self, key: Key, upload: Upload) -> None:
        self._open[key] = upload

    def pop(self, key: Key) -> Upload:
        return self._open.pop(key)

    def held(self, now: float) -> tuple[int, int]:
        """(held by uploads that have written, held by uploads that have not)."""
        writing = fresh = 0
        for u in self._open.values():
            if u.written:
                writing += u.holds(now)
            else:
                fresh += u.holds(now)
        return writing, fresh

    def expire(self, now: float) -> int:
        """Abort uploads idle for ``UPLOAD_IDLE_TIMEOUT``; return how many."""
        stale = [k for k, u in self._open.items() if now - u.last_activity > UPLOAD_IDLE_TIMEOUT]
        for key in stale:
            self._open.pop(key).incoming.abort()
        return len(stale)

    def make_room(self, now: float) -> bool:
        """Abort the longest-idle upload that no longer holds space, if one is needed."""
        if len(self._open) < MAX_UPLOADS:
            return True
        idle = [(u.last_activity, k) for k, u in self._open.items() if u.holds(now) == 0]
        if not idle:
            return False
        self._open.pop(min(idle)[1]).incoming.abort()
        return True
