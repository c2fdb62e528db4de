"""Local files as commands read and write them: what each kind of file gets.

Reading (``put``, ``cp`` up): the uploader needs the size in advance and
reads twice (the convergent key, then the shares), so

- a regular file with a size is read in place;
- a block device is read in place, its size found by seeking to its end;
- a pipe (standard input, a FIFO, ``<(…)``) is spooled to a private
  temporary file (memory first, then a 0600 unlinked file), as long as it
  runs: a pipe ends when its writer does;
- anything else without a trustworthy size (a character device such as
  ``/dev/zero`` or ``/dev/tty``; a ``/proc`` or ``/sys`` file, which reports
  size 0 or 4096 whatever it holds) is spooled up to ``UNSIZED_LIMIT`` and
  refused beyond it, since such a source may never end.

Writing (``get``, ``cp`` down): a regular file (or a new name) is written as
``NAME.part`` beside it, synced and renamed over it, so a reader never sees
half a file. A symbolic link is kept: the file it points to is replaced the
same way. A FIFO, character or block device is opened and written into,
never replaced (``get CAP /dev/null`` discards, a FIFO feeds its reader).
Not for grid paths: see ``grid_paths``.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from veil.errors import UsageError

SPOOL_IN_MEMORY = 64 * 1024 * 1024
UNSIZED_LIMIT = 64 * 1024 * 1024
_CHUNK = 1 << 20


def _spool(source: BinaryIO, name: str, limit: int | None) -> tuple[BinaryIO, int]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    try:
        size = 0
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if limit is not None and size > limit:
                raise UsageError(
                    f"{name} has no size and gave more than {limit // 2**20} MiB; "
                    "veil does not read such a file to its end (/dev/zero never ends)",
                    hint="copy what you want into a regular file first, "
                    "e.g. head -c 100M /dev/urandom > FILE",
                )
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size  # type: ignore[return-value]


def open_input(name: str) -> tuple[BinaryIO, int]:
    """An open file to upload and its size (see the module docstring)."""
    if name == "-":
        return _spool(sys.stdin.buffer, "standard input", None)
    f = open(Path(name), "rb")  # noqa: SIM115
    try:
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_size > 0 and st.st_blocks > 0:
            return f, st.st_size
        if stat.S_ISBLK(st.st_mode):
            size = os.lseek(f.fileno(), 0, os.SEEK_END)
            os.lseek(f.fileno(), 0, os.SEEK_SET)
            return f, size
        with f:
            if stat.S_ISFIFO(st.st_mode):
                return _spool(f, name, None)
            limit = max(st.st_size, UNSIZED_LIMIT) if stat.S_ISREG(st.st_mode) else UNSIZED_LIMIT
            return _spool(f, name, limit)
    except BaseException:
        f.close()
        raise


def read_at_most(name: str, limit: int) -> bytes | None:
    """All of ``name`` (``-``: standard input), or None when it holds more than
    ``limit`` bytes; a large regular file is refused without reading it."""
    if name == "-":
        data = sys.stdin.buffer.read(limit + 1)
        return None if len(data) > limit else data
    with open(Path(name), "rb") as f:
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_blocks > 0 and st.st_size > limit:
            return None
        data = f.read(limit + 1)
    return None if len(data) > limit else data


class Output:
    """Where downloaded bytes go; ``commit`` when complete, ``abort`` on failure."""

    def __init__(self, file: BinaryIO, partial: Path | None, final: Path | None) -> None:
        self.file = file
        self.partial = partial  # None: written in place (stdout, a FIFO, a device)
        self.final = final

    @property
    def regular(self) -> bool:
        """True when the result is a regular file that was (re)placed."""
        return self.partial is not None

    def commit(self) -> None:
        self.file.flush()
        if self.file is sys.stdout.buffer:
            return
        try:
            os.fsync(self.file.fileno())
        except OSError:
            if self.partial is not None:
                raise  # a FIFO or a character device cannot be synced; a file must be
        self.file.close()
        if self.partial is not None and self.final is not None:
            os.replace(self.partial, self.final)

    def abort(self) -> None:
        if self.file is sys.stdout.buffer:
            return
        self.file.close()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)  # never leave a file that looks complete


def open_output(name: str) -> Output:
    """Open where ``get``/``cp`` writes ``name`` (``-``: standard output)."""
    if name == "-":
        return Output(sys.stdout.buffer, None, None)
    if not name:
        raise UsageError(
            "an empty file name: nowhere to write", hint="name a file, or - for standard output"
        )
    path = Path(name)
    try:
        st: os.stat_result | None = os.stat(path)  # follows links: what would be written
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{name} is a directory", hint="name a file inside it")
    if st is not None and stat.S_ISSOCK(st.st_mode):
        raise UsageError(f"{name} is a socket; veil writes only files, FIFOs and devices")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return Output(open(path, "wb"), None, None)  # FIFO or device: written into as it is
    final = Path(os.path.realpath(path)) if path.is_symlink() else path
    if not final.parent.is_dir():
        raise UsageError(f"cannot write {name}: the directory {final.parent} does not exist")
    partial = final.with_name(final.name + ".part")
    return Output(open(partial, "wb"), partial, final)
