"""Making files on disk durable: one fsync, or many files at once.

A batch of completed shares is flushed together (``flush_many``): writeback
of every file is started first (Linux's ``sync_file_range``, a hint), then
the files and their directories are fsynced from a few threads at once, so
the file system commits them in a few journal transactions instead of one
per file (measured on ext4 here: 1000 small files in 35-60 ms instead of
300 ms). Only these files are waited for; ``syncfs`` would be faster still on
an idle disk but waits for every other writer's dirty data too.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

PARALLEL_FROM = 4  # files flushed together: from this many on, in ``THREADS`` threads
THREADS = 4
_SYNC_FILE_RANGE_WRITE = 2


def fsync_path(path: str, *, directory: bool = False) -> None:
    """fsync one file (or directory); ``FileNotFoundError`` if it is gone."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _start_writeback() -> Callable[[int], None]:
    """Start writing a file's dirty pages out without waiting (Linux), else nothing."""
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return lambda fd: None
    whole = ctypes.c_longlong(0)
    return lambda fd: call(fd, whole, whole, _SYNC_FILE_RANGE_WRITE)  # a hint only


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(THREADS, thread_name_prefix="veil-fsync")


def _each(fn: Callable[[str], None], paths: list[str]) -> None:
    """``fn`` on every path, in ``THREADS`` threads when there are many; the first
    error is raised after all have run."""

    def quietly_gone(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # expired or replaced meanwhile
            fn(path)

    if len(paths) < PARALLEL_FROM:
        for path in paths:
            quietly_gone(path)
        return
    for future in [_pool().submit(quietly_gone, p) for p in paths]:
        future.result()


def _hint(paths: Iterable[str]) -> None:
    start = _start_writeback()
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # the fsync that follows reports what matters
        try:
            start(fd)
        finally:
            os.close(fd)


def flush_many(paths: list[str]) -> None:
    """Make ``paths`` and their directory entries durable: every file, then every
    directory (a path gone meanwhile is skipped; any other failure is raised)."""
    if len(paths) >= PARALLEL_FROM:
        _hint(paths)
    _each(fsync_path, paths)
    directories = list(dict.fromkeys(os.path.dirname(p) for p in paths))
    _each(functools.partial(fsync_path, directory=True), directories)
