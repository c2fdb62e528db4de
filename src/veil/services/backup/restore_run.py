"""One restore run: a snapshot's tree written into a local directory.

Each file is written to ``.NAME.veil-part`` beside its final name, given its
mode, owner (when root) and times, then renamed: a final name never holds
half a file, also when the disk fills up or the run is killed. What is
already there and the same (``restore_plan``) is kept, so a rerun restores
only what is missing or different. Directories get their mode and time
after their children are written. While a restore runs the target holds a
marker, ``.veil-restore``, which tells a rerun that the target is its own.

Not root: entries owned by someone else are restored as the user and
listed (``summary.foreign``); rerunning the same restore as root gives them
their owners (names first, as tar does, then the numbers recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from veil.errors import UsageError, VeilError
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, LiteralCap
from veil.formats.dirnode import Entry
from veil.services.backup import restore_plan as plan
from veil.services.backup.backup_run import LARGE, LARGE_IN_FLIGHT, SLOTS, in_window
from veil.services.backup.metadata import SYMLINK, Recorded, recorded
from veil.services.directories import Directories
from veil.services.immutable.downloader import Downloader

MARKER = ".veil-restore"
PART = ".veil-part"


class RestoreError(VeilError):
    """The restore could not write where it was asked to."""


@dataclass
class RestoreSummary:
    files_written: int = 0
    files_kept: int = 0
    fixed: int = 0
    links: int = 0
    dirs: int = 0
    bytes_written: int = 0
    skipped: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        return {
            "files_written": self.files_written,
            "files_unchanged": self.files_kept,
            "metadata_fixed": self.fixed,
            "links": self.links,
            "dirs": self.dirs,
            "bytes_written": self.bytes_written,
            "skipped": len(self.skipped),
            "foreign_owners": len(self.foreign),
        }


def prepare_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a non-empty target that is not an unfinished restore (unless
    ``overwrite``); then mark it as this restore's."""
    try:
        present = [p.name for p in target.iterdir()] if target.exists() else []
    except OSError as exc:
        raise RestoreError(f"cannot read the target {target}: {exc.strerror}") from None
    if present and MARKER not in present and not overwrite:
        raise UsageError(
            f"{target} is not empty",
            hint="restore into a new or empty directory, or add --overwrite to replace "
            "what differs from the snapshot",
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / MARKER).write_text("a veil restore into this directory is not finished\n")
    except OSError as exc:
        raise RestoreError(f"cannot write into {target}: {exc.strerror}") from None


def finish_target(target: Path) -> None:
    (target / MARKER).unlink(missing_ok=True)


def _local(path: Path) -> plan.Local | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    target = os.readlink(path) if path.is_symlink() else None
    return plan.Local(st.st_mode, st.st_size, st.st_mtime_ns, st.st_uid, st.st_gid, target)


def _owner(rec: Recorded) -> tuple[int, int]:
    uid, gid = rec.uid if rec.uid is not None else -1, rec.gid if rec.gid is not None else -1
    try:
        uid = pwd.getpwnam(rec.user).pw_uid if rec.user else uid
    except KeyError:
        pass
    try:
        gid = grp.getgrnam(rec.group).gr_gid if rec.group else gid
    except KeyError:
        pass
    return uid, gid


class RestoreRun:
    def __init__(
        self,
        dirs: Directories,
        downloader: Downloader,
        *,
        include: Sequence[str] = (),
        slots: int = SLOTS,
        as_root: bool | None = None,
        on_file: Callable[[int, bool], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.dirs = dirs
        self.downloader = downloader
        self.include = list(include)
        self.slots = asyncio.Semaphore(slots)
        self.large = asyncio.Semaphore(min(slots, LARGE_IN_FLIGHT))
        self.as_root = os.geteuid() == 0 if as_root is None else as_root
        self.uid = os.geteuid()
        self.on_file = on_file or (lambda n, new: None)
        self.on_warning = on_warning or (lambda line: None)
        self.summary = RestoreSummary()

    async def run(self, snapshot: mc.DirCap, target: Path) -> RestoreSummary:
        await self._directory(snapshot, target, "", None)
        return self.summary

    def _meta(self, path: Path, rec: Recorded, *, is_dir: bool = False) -> None:
        link = rec.kind == SYMLINK
        if self.as_root and (rec.uid is not None or rec.user):
            os.chown(path, *_owner(rec), follow_symlinks=False)
        if not link and rec.mode is not None:
            os.chmod(path, rec.mode | (0o700 if is_dir else 0))
        if rec.mtime_ns is not None:
            os.utime(path, ns=(rec.mtime_ns, rec.mtime_ns), follow_symlinks=False)

    async def _directory(self, cap: mc.DirCap, local: Path, rel: str, rec: Recorded | None) -> None:
        try:
            if local.is_symlink() or (local.exists() and not local.is_dir()):
                local.unlink()
            local.mkdir(mode=0o700, exist_ok=True)
            if rec is not None:  # writable while its children are written
                os.chmod(local, (rec.mode or 0o700) | 0o700)
        except OSError as exc:
            raise RestoreError(f"cannot make the directory {local}: {exc.strerror}") from None
        children = await self.dirs.children(cap)
        tasks = []
        subdirs: list[tuple[mc.DirCap, Path, str, Recorded]] = []
        for name, entry in sorted(children.items()):
            path = f"{rel}/{name}" if rel else name
            if name in (".", "..") or "\0" in name or (not rel and name == MARKER):
                self._skip(f"skipped {path!r}: not a name a local file can have")
                continue
            child = mc.parse_any(entry.ro_cap or "")
            if isinstance(child, mc.DirCap):
                if plan.may_hold(path, self.include):
                    subdirs.append(
                        (child, local / name, path, recorded(entry.metadata, is_dir=True))
                    )
            elif plan.included(path, self.include):
                tasks.append(asyncio.ensure_future(self._file(entry, local / name, path)))
        try:
            await in_window([partial(self._directory, *sub) for sub in subdirs])
            for task in tasks:
                await task
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        for stale in local.glob(f".*{PART}"):  # left by a killed run, not rewritten
            stale.unlink(missing_ok=True)
        if rec is not None:
            self.summary.dirs += 1
            if not self.as_root and plan.foreign(rec, self.uid):
                self.summary.foreign.append(rel)
            try:
                self._meta(local, rec)
            except OSError as exc:
                raise RestoreError(f"cannot set the metadata of {local}: {exc.strerror}") from None

    def _skip(self, line: str) -> None:
        self.summary.skipped.append(line)
        self.on_warning(line)

    async def _file(self, entry: Entry, local: Path, rel: str) -> None:
        rec = recorded(entry.metadata, is_dir=False)
        cap = mc.parse_any(entry.ro_cap or "")
        if not isinstance(cap, CHKReadCap | LiteralCap):
            self._skip(f"skipped {rel}: not an immutable file (a backup holds only those)")
            return
        target: str | None = None
        if rec.kind == SYMLINK:
            target = rec.target
            if target is None:
                target = os.fsdecode(await self.downloader.download_bytes(cap))
        existing = _local(local)
        todo = plan.action(rec, cap.size, existing, as_root=self.as_root, target=target)
        if not self.as_root and plan.foreign(rec, self.uid):
            self.summary.foreign.append(rel)
        try:
            if todo == plan.KEEP:
                self.summary.files_kept += 1
                self.on_file(cap.size, False)
                return
            if todo == plan.FIX:
                self._meta(local, rec)
                self.summary.fixed += 1
                self.on_file(cap.size, False)
                return
            if existing is not None and existing.kind == "dir":
                self._skip(f"skipped {rel}: a directory is in its place")
                return
            large = self.large if cap.size > LARGE else contextlib.nullcontext()
            async with large, self.slots:
                await self._write(cap, local, rec, target)
        except OSError as exc:
            raise RestoreError(f"cannot write {local}: {exc.strerror}") from None
        if rec.kind == SYMLINK:
            self.summary.links += 1
        else:
            self.summary.files_written += 1
            self.summary.bytes_written += cap.size
        self.on_file(cap.size, True)

    async def _write(
        self, cap: CHKReadCap | LiteralCap, local: Path, rec: Recorded, target: str | None
    ) -> None:
        part = local.with_name(f".{local.name}{PART}")
        if part.is_symlink() or part.exists():
            part.unlink()
        try:
            if target is not None:
                os.symlink(target, part)
            else:
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    if isinstance(cap, LiteralCap):
                        out.write(cap.data)
                    else:
                        async for chunk in self.downloader.stream(cap, 0, None):
                            out.write(chunk)
            self._meta(part, rec)
            os.replace(part, local)
        except BaseException:
            part.unlink(missing_ok=True)
            raise


__all__ = [
    "MARKER",
    "RestoreError",
    "RestoreRun",
    "RestoreSummary",
    "finish_target",
    "prepare_target",
]
