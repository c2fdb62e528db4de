"""What a restore does to one path, pure: no I/O here.

A rerun of a restore into the same target restores only what is missing or
different: a file is taken as already restored when its kind, size and
modification time (to the nanosecond when the snapshot recorded them) are
the recorded ones (rsync's quick check); a link when its target is; then
only mode, times and owner are put right if they differ. Owners are given
back only by root; ``foreign`` says which entries belong to someone else.
``--include`` patterns are globs on the path below the snapshot (or on a
name): a match includes everything below it, and directories are walked
when something below them may match.
"""

from __future__ import annotations

import fnmatch
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from veil.services.backup.metadata import DIRECTORY, SYMLINK, Recorded, kind_of

WRITE, FIX, KEEP = "write", "fix", "keep"  # new bytes / metadata only / nothing


@dataclass(frozen=True)
class Local:
    """The ``lstat`` of what is already at a target path (and a link's target)."""

    mode: int
    size: int
    mtime_ns: int
    uid: int
    gid: int
    target: str | None = None

    @property
    def kind(self) -> str | None:
        return kind_of(self.mode)


def same_content(rec: Recorded, size: int | None, local: Local, target: str | None) -> bool:
    if local.kind != rec.kind:
        return False
    if rec.kind == SYMLINK:
        return target is not None and local.target == target
    if rec.kind == DIRECTORY:
        return True
    return size is not None and local.size == size and local.mtime_ns == rec.mtime_ns


def same_metadata(rec: Recorded, local: Local, *, as_root: bool) -> bool:
    if rec.kind != SYMLINK and rec.mode is not None and stat.S_IMODE(local.mode) != rec.mode:
        return False
    if as_root and rec.uid is not None and (local.uid, local.gid) != (rec.uid, rec.gid):
        return False
    return rec.kind == DIRECTORY or rec.mtime_ns is None or local.mtime_ns == rec.mtime_ns


def action(
    rec: Recorded,
    size: int | None,
    local: Local | None,
    *,
    as_root: bool,
    target: str | None = None,
) -> str:
    """``write`` (bytes needed), ``fix`` (metadata only) or ``keep``."""
    if local is None or not same_content(rec, size, local, target):
        return WRITE
    return KEEP if same_metadata(rec, local, as_root=as_root) else FIX


def foreign(rec: Recorded, my_uid: int) -> bool:
    """True when the entry belongs to another user (restored as me when not root)."""
    return rec.uid is not None and rec.uid != my_uid


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def included(path: str, patterns: Sequence[str]) -> bool:
    """Whether ``path`` (below the snapshot, ``/``-separated) is restored."""
    if not patterns:
        return True
    parts = _parts(path)
    for pattern in patterns:
        pattern = pattern.strip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatchcase(prefix, pattern) or fnmatch.fnmatchcase(
                parts[depth - 1], pattern
            ):
                return True
    return False


def may_hold(path: str, patterns: Sequence[str]) -> bool:
    """Whether a directory at ``path`` may hold something included."""
    if not patterns or included(path, patterns):
        return True
    depth = len(_parts(path))
    for pattern in patterns:
        pieces = _parts(pattern)
        if len(pieces) == 1:
            return True  # a bare name may match at any depth
        if all(
            fnmatch.fnmatchcase(a, b) for a, b in zip(_parts(path), pieces[:depth], strict=False)
        ):
            return True
    return False


__all__ = ["FIX", "KEEP", "WRITE", "Local", "action", "foreign", "included", "may_hold"]
