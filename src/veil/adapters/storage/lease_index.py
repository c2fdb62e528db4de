"""The lease index: one row per share with its lease expiries, in SQLite.

The lease records themselves stay in the share containers (Tahoe's format,
``veil.formats.container`` and ``mutable_container``); this is only an index
of them, so expiry and accounting never walk the whole store. It is kept in
``STORAGEDIR/lease_index.sqlite`` (WAL, synchronous=NORMAL: losing the last
updates in a crash is harmless, the expirer re-reads a container before it
deletes anything and reconciles regularly). A missing or unreadable file is
replaced by an empty one, which the expirer rebuilds from the containers.

Accounting (``veil.services.storage.accounts``) uses the same file: the
``share_owners`` table names the accounts holding a lease on each share, and
the index keeps per-account totals in memory (summed once when opened,
then kept in step), so a quota check costs no query. ``read_account_usage``
sums them for another process (``veil status``, the welcome page). An index
from before accounts (``user_version`` below 2) is rebuilt from the containers.

``MemoryLeaseIndex`` is the in-memory implementation of the same interface
(``veil.services.storage.expiry.LeaseIndex``), for tests and memory backends.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from veil.services.storage.accounts import Usage
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
CREATE TABLE IF NOT EXISTS share_owners (
    si BLOB NOT NULL, shnum INTEGER NOT NULL, mutable INTEGER NOT NULL,
    account INTEGER NOT NULL, PRIMARY KEY (si, shnum, mutable, account));
"""
SCHEMA_VERSION = 2  # 2: share_owners (accounting)
_USAGE_QUERY = (
    "SELECT o.account, count(*), coalesce(sum(s.size), 0) FROM share_owners o "
    "JOIN shares s ON s.si = o.si AND s.shnum = o.shnum AND s.mutable = o.mutable "
    "GROUP BY o.account"
)
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


def _owner_rows(share: IndexedShare) -> list[tuple[bytes, int, int, int]]:
    key = (share.storage_index, share.shnum, int(share.mutable))
    return [(*key, account) for account in share.owners]


def _add_usage(usage: dict[int, Usage], accounts: Iterable[int], size: int, sign: int) -> None:
    for account in accounts:
        usage[account] = usage.get(account, Usage()).plus(sign, sign * size)


_TOTALS_QUERY = (
    "SELECT count(*), coalesce(sum(size), 0), "
    "coalesce(sum(length(expiries) - length(replace(expiries, ',', '')) "
    "+ (expiries != '')), 0) FROM shares"
)


def _read_only(path: Path, query: str) -> list[Any] | None:
    """The rows of ``query`` on an index file opened read-only (another process
    may be writing it); None when there is no usable index."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                return None
            return db.execute(query).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        log.warning("the lease index cannot be read for the figures: %s", exc)
        return None


def read_account_usage(path: Path) -> dict[int, Usage] | None:
    """Per-account figures from an index file (read-only), or None."""
    rows = _read_only(path, _USAGE_QUERY)
    if rows is None:
        return None
    return {account: Usage(count, size) for account, count, size in rows}


def read_totals(path: Path) -> IndexTotals | None:
    """What an index file says the server holds (read-only, live), or None."""
    rows = _read_only(path, _TOTALS_QUERY)
    return None if rows is None else IndexTotals(*rows[0])


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
        self._usage: dict[int, Usage] = {}
        if self._fresh:
            self._db.execute("DELETE FROM shares")  # an old index is rebuilt whole
            self._db.execute("DELETE FROM share_owners")
        else:
            self._usage = {a: Usage(n, b) for a, n, b in self._db.execute(_USAGE_QUERY)}

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            self._fresh = True  # from before accounting: no owners yet
        db.executescript(_SCHEMA)
        db.execute("SELECT count(*) FROM shares").fetchone()  # a damaged file fails here
        self.path.chmod(0o600)
        return db

    def _forget(self, key: tuple[bytes, int, int]) -> None:
        """Drop a share's rows and take it out of the totals (lock and transaction held)."""
        where = "WHERE si=? AND shnum=? AND mutable=?"
        old = self._db.execute(f"SELECT size FROM shares {where}", key).fetchone()
        if old is None:
            return
        owners = [r[0] for r in self._db.execute(f"SELECT account FROM share_owners {where}", key)]
        _add_usage(self._usage, owners, old[0], -1)
        self._db.execute(f"DELETE FROM shares {where}", key)
        self._db.execute(f"DELETE FROM share_owners {where}", key)

    def account_usage(self) -> dict[int, Usage]:
        with self._lock:
            return {a: u for a, u in self._usage.items() if u.shares}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def is_fresh(self) -> bool:
        return self._fresh

    def put(self, share: IndexedShare) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._forget((share.storage_index, share.shnum, int(share.mutable)))
            self._db.execute("INSERT INTO shares VALUES (?,?,?,?,?,?,?)", _row(share))
            self._db.executemany("INSERT INTO share_owners VALUES (?,?,?,?)", _owner_rows(share))
            self._db.execute("COMMIT")
            _add_usage(self._usage, share.owners, share.size, 1)

    def remove(self, storage_index: bytes, shnum: int, mutable: bool) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._forget((storage_index, shnum, int(mutable)))
            self._db.execute("COMMIT")

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
        shares = list(shares)
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM shares")
            self._db.execute("DELETE FROM share_owners")
            self._db.executemany(
                "INSERT OR REPLACE INTO shares VALUES (?,?,?,?,?,?,?)", map(_row, shares)
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO share_owners VALUES (?,?,?,?)",
                [row for share in shares for row in _owner_rows(share)],
            )
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
            self._fresh = False
            self._usage = {}
            for share in shares:
                _add_usage(self._usage, share.owners, share.size, 1)

    def totals(self) -> IndexTotals:
        with self._lock:
            count, size, leases = self._db.execute(_TOTALS_QUERY).fetchone()
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

    def account_usage(self) -> dict[int, Usage]:
        usage: dict[int, Usage] = {}
        for share in self.rows.values():
            _add_usage(usage, share.owners, share.size, 1)
        return usage
