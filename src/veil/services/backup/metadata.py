"""What a backup records about a local file, pure: no I/O here.

Each entry's metadata holds Tahoe's own keys (``ctime``, ``mtime``,
``st_mode``, ``st_ino``, ``st_dev``, ``st_uid``, ``st_gid``, as
``tahoe backup`` 1.20 writes them) and, under the key ``veil``, what a
restore needs to give a file back as it was: its kind (file, dir, symlink),
permission bits (with set-uid/gid and sticky), modification time in
nanoseconds, numeric owner and group and their names, and a link's target.
Tahoe ignores and keeps the ``veil`` key.

Also here: snapshot names (Tahoe's ``iso_utc(sep="_") + "Z"``), the hash by
which an unchanged directory is recognised in the backup database, and
Tahoe's ``--exclude`` matching (``fnmatch`` on each name).
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from veil.formats import base32
from veil.formats.hashes import tagged_hash

VEIL_KEY = "veil"
FILE, DIRECTORY, SYMLINK = "file", "dir", "symlink"
# Tahoe 1.20's BackupOptions.vcs_patterns
VCS_PATTERNS = (
    "CVS",
    "RCS",
    "SCCS",
    ".git",
    ".gitignore",
    ".cvsignore",
    ".svn",
    ".arch-ids",
    "{arch}",
    "=RELEASE-ID",
    "=meta-update",
    "=update",
    ".bzr",
    ".bzrignore",
    ".bzrtags",
    ".hg",
    ".hgignore",
    "_darcs",
)
DIRHASH_TAG = b"veil_backupdb_dirhash_v2"  # Tahoe's tag hashes names and caps only
_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[_T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?Z?$")


def kind_of(mode: int) -> str | None:
    """``file``, ``dir``, ``symlink``, or None for what a backup skips
    (sockets, devices, FIFOs)."""
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return DIRECTORY
    if stat.S_ISLNK(mode):
        return SYMLINK
    return None


def entry_metadata(
    st: os.stat_result,
    *,
    user: str | None,
    group: str | None,
    target: str | None = None,
) -> dict[str, Any]:
    """The metadata of one entry, from the ``lstat`` of what it records."""
    kind = kind_of(st.st_mode)
    veil: dict[str, Any] = {
        "kind": kind,
        "mode": stat.S_IMODE(st.st_mode),
        "mtime_ns": st.st_mtime_ns,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "user": user,
        "group": group,
    }
    if kind == FILE:
        veil["size"] = st.st_size
    if target is not None:
        veil["target"] = target
    return {
        "ctime": st.st_ctime,
        "mtime": st.st_mtime,
        "st_mode": st.st_mode,
        "st_ino": st.st_ino,
        "st_dev": st.st_dev,
        "st_uid": st.st_uid,
        "st_gid": st.st_gid,
        VEIL_KEY: veil,
    }


@dataclass(frozen=True)
class Recorded:
    """What an entry says a file was (Tahoe-made entries lack the veil key:
    their kind comes from the cap, and mode/owner from Tahoe's ``st_*``)."""

    kind: str
    mode: int | None
    mtime_ns: int | None
    uid: int | None
    gid: int | None
    user: str | None
    group: str | None
    size: int | None
    target: str | None


def recorded(metadata: Mapping[str, Any], *, is_dir: bool) -> Recorded:
    veil = metadata.get(VEIL_KEY)
    veil = veil if isinstance(veil, dict) else {}

    def num(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    kind = text(veil.get("kind")) or (DIRECTORY if is_dir else FILE)
    if kind not in (FILE, DIRECTORY, SYMLINK) or (kind == DIRECTORY) != is_dir:
        kind = DIRECTORY if is_dir else FILE
    mode = num(veil.get("mode"))
    if mode is None and num(metadata.get("st_mode")) is not None:
        mode = stat.S_IMODE(int(metadata["st_mode"]))
    mtime_ns = num(veil.get("mtime_ns"))
    if mtime_ns is None and isinstance(metadata.get("mtime"), int | float):
        mtime_ns = round(float(metadata["mtime"]) * 1e9)
    return Recorded(
        kind,
        mode,
        mtime_ns,
        num(veil.get("uid", metadata.get("st_uid"))),
        num(veil.get("gid", metadata.get("st_gid"))),
        text(veil.get("user")),
        text(veil.get("group")),
        num(veil.get("size")),
        text(veil.get("target")),
    )


def archive_name(when: float) -> str:
    """Tahoe's snapshot name for a time: ``2026-12-01_22:35:00Z`` (UTC, seconds)."""
    moment = datetime.datetime.fromtimestamp(int(when), datetime.UTC)
    return moment.replace(tzinfo=None).isoformat("_") + "Z"


def archive_time(name: str) -> float | None:
    """The time a snapshot name stands for, or None when it is not one."""
    m = _NAME.match(name)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        moment = datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.UTC)
    except ValueError:
        return None
    return moment.timestamp() + float(m.group(7) or 0)


def dirhash(children: Mapping[str, tuple[str, Mapping[str, Any]]]) -> str:
    """The database key of a directory's contents: names, caps and metadata
    (so a changed mode or time makes a new directory; Tahoe's key hashes
    names and caps only and would keep the old metadata). One JSON text of
    the sorted entries: a rerun computes this for every directory."""
    text = json.dumps(
        [[name, *children[name]] for name in sorted(children)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return base32.b2a(tagged_hash(DIRHASH_TAG, text.encode("utf-8", "surrogatepass")))


class Excluder:
    """Tahoe's ``--exclude`` rule: a name matching any glob is left out."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = sorted({p.strip() for p in patterns if p.strip()})
        self._regexps = [re.compile(fnmatch.translate(p)) for p in self.patterns]

    def excluded(self, name: str) -> bool:
        return any(r.match(name) for r in self._regexps)


def read_exclude_lines(text: str) -> list[str]:
    """The patterns of an ``--exclude-from-utf-8`` file: one per line."""
    return [line.strip() for line in text.splitlines() if line.strip()]
