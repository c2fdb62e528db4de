"""One backup run: walk a local tree, upload what changed, build immutable dirs.

Depth first: a directory's files are started at once (at most ``slots``
uploads in flight over the one client, of which at most ``LARGE_IN_FLIGHT``
larger than ``LARGE``: many small files in flight make big batches, few
large ones keep memory bounded), its subdirectories are walked while they
upload (``WINDOW`` at a time), and the directory is made
(``URI:DIR2-CHK:`` or ``DIR2-LIT``) as soon as all its children are known,
so memory holds the directories on the paths being walked, not the tree.
Files and directories the backup database (``Cache``) knows unchanged are
not uploaded again; each upload is recorded as soon as it finishes, so a
killed run loses nothing finished.

Skipped with a warning (the run then exits 3): sockets, devices and FIFOs,
names that are not valid UTF-8 or that equal another name once NFC
normalized, unreadable files and directories, files that keep changing
while they are read. Symlinks are kept: a small file holding the target,
with ``veil.kind = symlink`` in its metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import io
import os
import pwd
import stat
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from veil.errors import UnhappinessError, UploadError, UsageError
from veil.formats import mutable_caps as mc
from veil.formats.dirnode import Entry
from veil.services.backup.metadata import (
    DIRECTORY,
    FILE,
    SYMLINK,
    Excluder,
    dirhash,
    entry_metadata,
    kind_of,
)
from veil.services.directories import Directories
from veil.services.immutable.uploader import Uploader

RETRIES = 2  # a file that changes while read is read again this many times
WINDOW = 8  # subdirectories of one directory walked at once
SLOTS = 128  # files in flight (small ones share a batch request per server)
LARGE = 1024 * 1024  # files above this size stream their shares, one upload each
LARGE_IN_FLIGHT = 8
T = TypeVar("T")
U = TypeVar("U")


async def together(first: Awaitable[T], second: Awaitable[U]) -> tuple[T, U]:
    """Run both at once; the first failure cancels the other and is raised as it
    is (a user's mistake stays one line, not an exception group)."""
    a, b = asyncio.ensure_future(first), asyncio.ensure_future(second)
    try:
        await asyncio.wait((a, b), return_when=asyncio.FIRST_EXCEPTION)
        for task in (a, b):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return a.result(), b.result()
    finally:
        for task in (a, b):
            task.cancel()
        await asyncio.gather(a, b, return_exceptions=True)


async def in_window(jobs: Sequence[Callable[[], Awaitable[T]]], width: int = WINDOW) -> list[T]:
    """Run ``jobs`` at most ``width`` at a time, the next starting as soon as any
    one ends (a slow one does not hold the others back); their results in order.
    On a failure the others are cancelled and it is raised."""
    results: list[T | None] = [None] * len(jobs)
    pending: set[asyncio.Task[T]] = set()
    index: dict[asyncio.Task[T], int] = {}
    try:
        for i, job in enumerate(jobs):
            if len(pending) >= width:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    results[index[task]] = task.result()
            task = asyncio.ensure_future(job())
            index[task] = i
            pending.add(task)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                results[index[task]] = task.result()
    except BaseException:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise
    return results  # type: ignore[return-value]  # every slot filled


class Known(Protocol):
    def cap_if(self, st: os.stat_result) -> str | None: ...


class Cache(Protocol):
    """The backup database, as the run sees it (``veil.adapters.node.backupdb``)."""

    def file_cap(self, path: str, st: os.stat_result) -> str | None: ...
    def files_in(self, directory: str) -> Mapping[str, Known]: ...
    def file_done(self, path: str, st: os.stat_result, cap: str) -> None: ...
    def dir_cap(self, dirhash: str) -> str | None: ...
    def dir_done(self, dirhash: str, cap: str) -> None: ...


@dataclass
class BackupSummary:
    files_new: int = 0
    files_unchanged: int = 0
    dirs_new: int = 0
    dirs_unchanged: int = 0
    symlinks: int = 0
    bytes_new: int = 0
    bytes_total: int = 0
    skipped: list[str] = field(default_factory=list)  # what and why, one line each
    unreadable: list[str] = field(default_factory=list)  # paths the user may not read

    @property
    def files(self) -> int:
        return self.files_new + self.files_unchanged

    def as_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "files_new": self.files_new,
            "files_unchanged": self.files_unchanged,
            "dirs_new": self.dirs_new,
            "dirs_unchanged": self.dirs_unchanged,
            "symlinks": self.symlinks,
            "bytes_new": self.bytes_new,
            "bytes_total": self.bytes_total,
            "skipped": len(self.skipped),
            "unreadable": len(self.unreadable),
        }


def _names(st: os.stat_result) -> tuple[str | None, str | None]:
    try:
        user: str | None = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = None
    try:
        group: str | None = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = None
    return user, group


class BackupRun:
    def __init__(
        self,
        uploader: Uploader,
        dirs: Directories,
        cache: Cache,
        *,
        excluder: Excluder | None = None,
        slots: int = SLOTS,
        on_file: Callable[[int, bool], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.uploader = uploader
        # A killed run leaves its unfinished shares reserved on the servers (for a
        # minute), which blocks the same convergent upload; such a file is then
        # uploaded under a random key instead.
        self.fresh = Uploader(
            uploader.broker,
            uploader.params,
            lease_secret=uploader.lease_secret,
            convergence_secret=None,
            codec_backend=uploader.codec_backend,
        )
        self.dirs = dirs
        self.cache = cache
        self.excluder = excluder or Excluder()
        self.slots = asyncio.Semaphore(slots)
        self.large = asyncio.Semaphore(min(slots, LARGE_IN_FLIGHT))
        self.on_file = on_file or (lambda n, new: None)
        self.on_warning = on_warning or (lambda line: None)
        self.summary = BackupSummary()
        self._owners: dict[tuple[int, int], tuple[str | None, str | None]] = {}

    def _meta(self, st: os.stat_result, target: str | None = None) -> dict[str, Any]:
        key = (st.st_uid, st.st_gid)
        if key not in self._owners:
            self._owners[key] = _names(st)
        user, group = self._owners[key]
        return entry_metadata(st, user=user, group=group, target=target)

    def _skip(self, line: str) -> None:
        self.summary.skipped.append(line)
        self.on_warning(line)

    def _unreadable(self, path: Path, what: str) -> None:
        self.summary.unreadable.append(str(path))
        self.on_warning(f"cannot read {what} {path}: permission denied")

    async def run(self, root: Path) -> tuple[mc.DirCap, dict[str, Any]]:
        """Back up the directory ``root``; its cap and the root's own metadata."""
        root = Path(os.path.abspath(os.path.expanduser(root)))
        try:
            st = root.stat()
        except OSError as exc:
            raise UsageError(f"cannot back up {root}: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{root} is not a directory", hint="veil backup backs up a directory")
        made = await self._directory(root, st)
        if made is None:
            raise UsageError(f"cannot read the directory {root}: permission denied")
        return made

    async def _directory(
        self, path: Path, st: os.stat_result
    ) -> tuple[mc.DirCap, dict[str, Any]] | None:
        try:
            with os.scandir(path) as it:
                names = sorted(e.name for e in it)
        except PermissionError:
            self._unreadable(path, "directory")
            return None
        except OSError as exc:
            self._skip(f"skipped directory {path}: {exc.strerror}")
            return None
        # A walk of unchanged directories never waits: let the loop send what others
        # started (the history's reads, uploads) between directories.
        await asyncio.sleep(0)
        known = self.cache.files_in(str(path))  # one query for the directory's files
        files: dict[str, asyncio.Task[tuple[str, dict[str, Any]] | None]] = {}
        subdirs: list[tuple[str, Path, os.stat_result]] = []
        children: dict[str, tuple[str, dict[str, Any]]] = {}
        seen: set[str] = set()
        base = str(path).rstrip("/")  # plain text: a Path per unchanged file costs more
        for name in names:
            if self.excluder.excluded(name):
                continue
            text = f"{base}/{name}"
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                self._skip(f"skipped {os.fsencode(text)!r}: its name is not valid UTF-8")
                continue
            grid_name = unicodedata.normalize("NFC", name)
            if grid_name in seen:
                self._skip(f"skipped {text}: another name in {path} is the same once normalized")
                continue
            seen.add(grid_name)
            try:
                cst = os.lstat(text)
            except FileNotFoundError:
                continue  # gone since it was listed
            kind = kind_of(cst.st_mode)
            if kind == FILE:
                same = self._unchanged(text, cst, known.get(name))  # no task for those
                if same is not None:
                    children[grid_name] = same
                else:
                    files[grid_name] = asyncio.ensure_future(self._file(path / name, cst))
            elif kind == DIRECTORY:
                subdirs.append((grid_name, path / name, cst))
            elif kind == SYMLINK:
                target = os.readlink(text)
                children[grid_name] = await self._symlink(target, cst)
            else:
                self._skip(f"skipped {text}: a socket, device or FIFO is not backed up")
        try:
            walks = [partial(self._directory, child, cst) for _, child, cst in subdirs]
            for (grid_name, _, _), made in zip(subdirs, await in_window(walks), strict=True):
                if made is not None:
                    children[grid_name] = (made[0].to_string(), made[1])
            for grid_name, task in files.items():
                result = await task
                if result is not None:
                    children[grid_name] = result
        except BaseException:
            for task in files.values():
                task.cancel()
            raise
        return await self._make_directory(children), self._meta(st)

    async def _make_directory(self, children: dict[str, tuple[str, dict[str, Any]]]) -> mc.DirCap:
        key = dirhash(children)
        known = self.cache.dir_cap(key)
        if known is not None:
            cap = mc.parse_any(known)
            if isinstance(cap, mc.DirCap):
                self.summary.dirs_unchanged += 1
                return cap
        entries = {name: Entry(c, None, meta) for name, (c, meta) in children.items()}
        async with self.slots:
            try:
                made = await self.dirs.create_immutable(entries, self.uploader)
            except UnhappinessError:
                made = await self.dirs.create_immutable(entries, self.fresh)
        self.cache.dir_done(key, made.to_string())
        self.summary.dirs_new += 1
        return made

    async def _symlink(self, target: str, st: os.stat_result) -> tuple[str, dict[str, Any]]:
        raw = os.fsencode(target)
        try:
            shown: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            shown = None  # kept in the file's bytes only
        async with self.slots:
            result = await self.uploader.upload_bytes(raw)
        self.summary.symlinks += 1
        return result.cap.to_string(), self._meta(st, shown)

    def _unchanged(
        self, path: str, st: os.stat_result, record: Known | None
    ) -> tuple[str, dict[str, Any]] | None:
        known = record.cap_if(st) if record else self.cache.file_cap(path, st)
        if known is None:
            return None
        self.summary.files_unchanged += 1
        self.summary.bytes_total += st.st_size
        self.on_file(st.st_size, False)
        return known, self._meta(st)

    async def _file(self, path: Path, st: os.stat_result) -> tuple[str, dict[str, Any]] | None:
        key = str(path)
        large = self.large if st.st_size > LARGE else contextlib.nullcontext()
        async with large, self.slots:
            for _attempt in range(RETRIES + 1):
                try:
                    with open(path, "rb") as f:
                        before = os.fstat(f.fileno())
                        try:
                            cap = await self._upload(f, before.st_size, self.uploader)
                        except UnhappinessError:
                            cap = await self._upload(f, before.st_size, self.fresh)
                        after = os.fstat(f.fileno())
                except PermissionError:
                    self._unreadable(path, "file")
                    return None
                except FileNotFoundError:
                    return None  # removed while the backup ran: not there to keep
                except UploadError as exc:
                    if "changed size" not in str(exc):
                        raise
                    continue
                except OSError as exc:
                    self._skip(f"skipped {path}: {exc.strerror}")
                    return None
                if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
                    break
            else:
                self._skip(f"skipped {path}: it kept changing while it was read")
                return None
        self.cache.file_done(key, before, cap)
        self.summary.files_new += 1
        self.summary.bytes_new += before.st_size
        self.summary.bytes_total += before.st_size
        self.on_file(before.st_size, True)
        return cap, self._meta(before)

    async def _upload(self, f: io.BufferedReader, size: int, uploader: Uploader) -> str:
        f.seek(0)  # small files go in batches where the servers offer them (uploader)
        return (await uploader.upload_file(f, size)).cap.to_string()


__all__ = ["BackupRun", "BackupSummary", "Cache", "in_window", "together"]
