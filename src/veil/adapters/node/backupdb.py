"""The backup database: ``private/backupdb.sqlite`` in Tahoe 1.20's schema.

Tahoe's tables (schema version 2) are used as Tahoe uses them, so a node
directory where ``tahoe backup`` ran skips the files Tahoe uploaded, and
Tahoe skips what veil uploaded: ``local_files`` (absolute path, size, whole
seconds of mtime and ctime, file id), ``caps`` (file id, cap; written as
bytes, as Tahoe 1.20 does), ``last_upload`` and ``directories`` (dirhash,
dircap). veil adds one table of its own, ``veil_local_files``, with the
inode, device and nanosecond times: a file is unchanged when Tahoe's row
matches and, if veil's row exists, that matches too (a row Tahoe wrote alone
is trusted on Tahoe's terms). veil's directory hashes use a tag of their
own (``veil.services.backup.metadata.dirhash``), so the two never mistake
each other's directories.

Every answer is committed when it is recorded (write-ahead log, no fsync per
commit): a backup killed at any moment keeps every finished upload.
Tahoe's occasional re-check of old caps (after one to two months) is not
done here.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from veil.errors import ConfigError

SCHEMA_V2 = """
CREATE TABLE version (version INTEGER);
CREATE TABLE local_files (
 path VARCHAR(1024) PRIMARY KEY, size INTEGER, mtime NUMBER, ctime NUMBER, fileid INTEGER);
CREATE TABLE caps (fileid INTEGER PRIMARY KEY AUTOINCREMENT, filecap VARCHAR(256) UNIQUE);
CREATE TABLE last_upload (
 fileid INTEGER PRIMARY KEY, last_uploaded TIMESTAMP, last_checked TIMESTAMP);
CREATE TABLE directories (
 dirhash varchar(256) PRIMARY KEY, dircap varchar(256), last_uploaded TIMESTAMP,
 last_checked TIMESTAMP);
"""
UPDATE_V1_TO_V2 = """
CREATE TABLE directories (
 dirhash varchar(256) PRIMARY KEY, dircap varchar(256), last_uploaded TIMESTAMP,
 last_checked TIMESTAMP);
UPDATE version SET version=2;
"""
VEIL_TABLE = """
CREATE TABLE IF NOT EXISTS veil_local_files (
 path VARCHAR(1024) PRIMARY KEY, size INTEGER, ino INTEGER, dev INTEGER,
 mtime_ns INTEGER, ctime_ns INTEGER);
"""
FILENAME = "backupdb.sqlite"
_KNOWN = (
    "SELECT l.path, l.size, l.mtime, l.ctime, v.path, v.size, v.ino, v.dev, v.mtime_ns,"
    " v.ctime_ns, c.filecap, u.fileid FROM local_files l"
    " LEFT JOIN veil_local_files v ON v.path = l.path"
    " LEFT JOIN caps c ON c.fileid = l.fileid"
    " LEFT JOIN last_upload u ON u.fileid = l.fileid"
)


class KnownFile:
    """One file's record: Tahoe's (size, whole-second times) and veil's finer one."""

    __slots__ = ("_row",)

    def __init__(self, row: tuple[object, ...]) -> None:
        self._row = row

    def cap_if(self, st: os.stat_result) -> str | None:
        """The file's cap when ``st`` says it is unchanged since it was uploaded."""
        row = self._row
        if tuple(row[1:4]) != (st.st_size, int(st.st_mtime), int(st.st_ctime)):
            return None
        now = (st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns)
        if row[4] is not None and tuple(row[5:10]) != now:
            return None  # veil's own finer record (written by veil, not by Tahoe) differs
        cap, uploaded = row[10], row[11]
        return _text(cap) if cap is not None and uploaded is not None else None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _owner_only(path: Path) -> None:
    """The database names every file backed up and its read cap: mode 0600, made
    so before SQLite opens it (its -wal and -shm files take the same mode), and a
    database that ``tahoe backup`` made under the umask is narrowed to it."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        os.chmod(path, 0o600)
        for suffix in ("-wal", "-shm"):  # left by an earlier version under the umask
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)
    except OSError as exc:
        why = exc.strerror or "cannot be opened"
        raise ConfigError(f"{path}: the backup database cannot be opened ({why})") from None


class BackupDB:
    """One open backup database (use as a context manager, or ``close``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            must_create = not path.exists()
            _owner_only(path)
            self.db = sqlite3.connect(path, isolation_level=None)
            c = self.db
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            if must_create:
                c.executescript(SCHEMA_V2)
                c.execute("INSERT INTO version (version) VALUES (2)")
            (version,) = c.execute("SELECT version FROM version").fetchone()
            if version == 1:
                c.executescript(UPDATE_V1_TO_V2)
            elif version != 2:
                raise ConfigError(f"{path}: backup database version {version} is not known")
            c.executescript(VEIL_TABLE)
        except (sqlite3.DatabaseError, TypeError) as exc:
            raise ConfigError(
                f"{path} cannot be used as a backup database ({exc})",
                hint="move it away; the next backup then checks every file again",
            ) from None

    @classmethod
    def of_node(cls, node_dir: Path) -> BackupDB:
        private = node_dir / "private"
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(private / FILENAME)

    def __enter__(self) -> BackupDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- files -----------------------------------------------------------------------

    def file_cap(self, path: str, st: os.stat_result) -> str | None:
        """The cap of ``path`` when it is unchanged since it was uploaded."""
        row = self.db.execute(f"{_KNOWN} WHERE l.path=?", (path,)).fetchone()
        return KnownFile(row).cap_if(st) if row else None

    def files_in(self, directory: str) -> dict[str, KnownFile]:
        """What the database knows of the files right in ``directory``, by name:
        one query per directory (a rerun asks about every file)."""
        lo = directory.rstrip("/") + "/"
        rows = self.db.execute(  # "0" follows "/": the range is what lies below lo
            f"{_KNOWN} WHERE l.path > ? AND l.path < ?", (lo, lo[:-1] + "0")
        ).fetchall()
        start = len(lo)
        out = {}
        for row in rows:
            name = row[0][start:] if isinstance(row[0], str) else ""
            if name and "/" not in name:
                out[name] = KnownFile(row)
        return out

    def _fileid(self, cap: str) -> int:
        c = self.db
        for form in (cap.encode("utf-8"), cap):
            row = c.execute("SELECT fileid FROM caps WHERE filecap=?", (form,)).fetchone()
            if row:
                return int(row[0])
        cur = c.execute("INSERT INTO caps (filecap) VALUES (?)", (cap.encode("utf-8"),))
        return int(cur.lastrowid or 0)

    def file_done(self, path: str, st: os.stat_result, cap: str) -> None:
        """Record that ``path`` (as ``st`` says it was while read) has ``cap``."""
        now = time.time()
        c = self.db
        c.execute("BEGIN")
        try:
            fileid = self._fileid(cap)
            c.execute("INSERT OR REPLACE INTO last_upload VALUES (?,?,?)", (fileid, now, now))
            c.execute(
                "INSERT OR REPLACE INTO local_files VALUES (?,?,?,?,?)",
                (path, st.st_size, int(st.st_mtime), int(st.st_ctime), fileid),
            )
            c.execute(
                "INSERT OR REPLACE INTO veil_local_files VALUES (?,?,?,?,?,?)",
                (path, st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # -- directories -----------------------------------------------------------------

    def dir_cap(self, dirhash: str) -> str | None:
        row = self.db.execute(
            "SELECT dircap FROM directories WHERE dirhash=?", (dirhash,)
        ).fetchone()
        return _text(row[0]) if row else None

    def dir_done(self, dirhash: str, cap: str) -> None:
        now = time.time()
        self.db.execute(
            "REPLACE INTO directories VALUES (?,?,?,?)", (dirhash, cap.encode("utf-8"), now, now)
        )


__all__ = ["FILENAME", "BackupDB"]
