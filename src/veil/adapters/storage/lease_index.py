"""The lease index: one row per share with its lease expiries, in SQLite.

The lease records themselves stay in the share containers (Tahoe's format,
``veil.formats.container`` and ``mutable_container``); this is only an index
of them, so expiry and accounting never walk the whole store. It is kept in
``STORAGEDIR/lease_index.sqlite`` (WAL, synchronous=NORMAL: losing the last
updates in a crash is harmless, the expirer re-reads a container before it
deletes anything and reconciles regularly). A missing or unreadable file is
replaced by an empty one, which the expirer rebuilds from the containers.

``MemoryLeaseIndex`` is the in-memory implementation of the same interface
(``veil.services.storage.expiry.LeaseIndex``), for tests and memory backends.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from veil.services.storage.expiry import IndexedShare, IndexTotals

log = logging.getLogger("veil.storage.lease_index")
FILENAME = "lease_index.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS shares (
    si BLOB NOT NULL, shnum INTEGER NOT NULL, mutable INTEGER NOT NULL,
    min_expiry INTEGER NOT NULL, max_expiry INTEGER NOT NULL,
    expiries TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (si, shnum, mutable));
CREATE INDEX IF NOT EXISTS by_min_expiry ON shares (min_expiry);
"""
_NO_LEASE = -1  # a share with no lease at all is always due


def _row(share: IndexedShare) -> tuple[bytes, int, int, int, int, str, int]:
    e = share.expiries
    low, high = (min(e), max(e)) if e else (_NO_LEASE, _NO_LEASE)
    text = ",".join(map(str, e))
    return share.storage_index, share.shnum, int(share.mutable), low, high, text, share.size


def _share(row: tuple[bytes, int, int, str, int]) -> IndexedShare:
    si, shnum, mutable, text, size = row
    expiries = tuple(int(x) for x in text.split(",") if x)
    return IndexedShare(bytes(si), shnum, bool(mutable), expiries, size)


class SQLiteLeaseIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fresh = not path.exists()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            log.warning("the lease index is unreadable (%s): rebuilding it from the shares", exc)
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            self._fresh = True
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        db.execute("SELECT count(*) FROM shares").fetchone()  # a damaged file fails here
        self.path.chmod(0o600)
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def is_fresh(self) -> bool:
        return self._fresh

    def put(self, share: IndexedShare) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO shares VALUES (?,?,?,?,?,?,?)", _row(share))

    def remove(self, storage_index: bytes, shnum: int, mutable: bool) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM shares WHERE si=? AND shnum=? AND mutable=?",
                (storage_index, shnum, int(mutable)),
            )

    def shares_of(self, storage_index: bytes) -> list[IndexedShare]:
        with self._lock:
            rows = self._db.execute(
                "SELECT si, shnum, mutable, expiries, size FROM shares WHERE si=?",
                (storage_index,),
            ).fetchall()
        return [_share(r) for r in rows]

    def due(
        self, threshold: float, *, immutable: bool, mutable: bool, limit: int
    ) -> list[IndexedShare]:
        kinds = [k for k, on in ((0, immutable), (1, mutable)) if on]
        if not kinds:
            return []
        marks = ",".join("?" * len(kinds))
        with self._lock:
            rows = self._db.execute(
                "SELECT si, shnum, mutable, expiries, size FROM shares "
                f"WHERE min_expiry < ? AND mutable IN ({marks}) ORDER BY min_expiry LIMIT ?",
                (threshold, *kinds, limit),
            ).fetchall()
        return [_share(r) for r in rows]

    def replace_all(self, shares: Iterable[IndexedShare]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM shares")
            self._db.executemany(
                "INSERT OR REPLACE INTO shares VALUES (?,?,?,?,?,?,?)", map(_row, shares)
            )
            self._db.execute("COMMIT")
            self._fresh = False

    def totals(self) -> IndexTotals:
        with self._lock:
            count, size, leases = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0), "
                "coalesce(sum(length(expiries) - length(replace(expiries, ',', '')) "
                "+ (expiries != '')), 0) FROM shares"
            ).fetchone()
        return IndexTotals(count, size, leases)


class MemoryLeaseIndex:
    def __init__(self) -> None:
        self.rows: dict[tuple[bytes, int, bool], IndexedShare] = {}
        self._fresh = True

    def is_fresh(self) -> bool:
        return self._fresh

    def put(self, share: IndexedShare) -> None:
        self.rows[(share.storage_index, share.shnum, share.mutable)] = share

    def remove(self, storage_index: bytes, shnum: int, mutable: bool) -> None:
        self.rows.pop((storage_index, shnum, mutable), None)

    def shares_of(self, storage_index: bytes) -> list[IndexedShare]:
        return [s for s in self.rows.values() if s.storage_index == storage_index]

    def due(
        self, threshold: float, *, immutable: bool, mutable: bool, limit: int
    ) -> list[IndexedShare]:
        def low(s: IndexedShare) -> int:
            return min(s.expiries) if s.expiries else _NO_LEASE

        found = [
            s
            for s in self.rows.values()
            if low(s) < threshold and (mutable if s.mutable else immutable)
        ]
        return sorted(found, key=low)[:limit]

    def replace_all(self, shares: Iterable[IndexedShare]) -> None:
        self.rows = {(s.storage_index, s.shnum, s.mutable): s for s in shares}
        self._fresh = False

    def totals(self) -> IndexTotals:
        rows = self.rows.values()
        return IndexTotals(len(rows), sum(s.size for s in rows), sum(len(s.expiries) for s in rows))
