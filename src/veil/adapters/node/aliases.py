"""``private/aliases``: a node's names for directory caps, in Tahoe's format.

One ``name: cap`` per line (UTF-8; blank lines and ``#`` comments allowed),
names NFC-normalized and without ``:``. The file holds write caps, so it is
written private (0600) and atomically: a crash leaves the old or the new file,
never half of one. Writers may run at the same time (several ``veil``
processes): each read-modify-write holds an exclusive ``flock`` on
``private/aliases.lock`` and writes its own temporary file, so no alias is
ever lost to another writer. ``create`` keeps the lock while the new
directory is made, so the name cannot be taken meanwhile; if the alias still
cannot be written, the new write cap is saved in ``private/aliases.unsaved``
(or, failing that, printed) rather than lost.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TextIO

from veil.errors import ConfigError, UsageError, VeilError

LOCK_TIMEOUT = 120.0  # seconds to wait for another veil process's alias change


def normalize(name: str) -> str:
    name = unicodedata.normalize("NFC", name.strip())
    if not name or ":" in name or "\n" in name:
        raise UsageError(f"alias {name!r}: an alias is a non-empty name without ':'")
    return name


class Aliases:
    def __init__(self, node_dir: Path, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.path = node_dir / "private" / "aliases"
        self.lock_path = node_dir / "private" / "aliases.lock"
        self.unsaved_path = node_dir / "private" / "aliases.unsaved"
        self.lock_timeout = lock_timeout

    def load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        out: dict[str, str] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{self.path} is not UTF-8 text") from None
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            name, sep, cap = stripped.partition(":")
            if not sep or not name.strip() or not cap.strip():
                raise ConfigError(f"{self.path} line {number} is not 'name: cap'")
            out[unicodedata.normalize("NFC", name.strip())] = cap.strip()
        return out

    def _open_lock(self) -> tuple[int, float]:
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        return fd, time.monotonic() + self.lock_timeout

    def _try_lock(self, fd: int, deadline: float) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"{self.lock_path} stayed locked for {self.lock_timeout:.0f}s",
                    hint="another veil process is changing the aliases; try again",
                ) from None
            return False

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive alias lock (other veil processes wait for it)."""
        fd, deadline = self._open_lock()
        try:
            while not self._try_lock(fd, deadline):
                time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # releases the lock

    @asynccontextmanager
    async def locked_async(self) -> AsyncIterator[None]:
        fd, deadline = self._open_lock()
        try:
            while not self._try_lock(fd, deadline):
                await asyncio.sleep(0.02)
            yield
        finally:
            os.close(fd)

    def add(self, name: str, cap: str) -> None:
        name = normalize(name)
        with self.locked():
            self._add_locked(name, cap)

    async def create(
        self, name: str, make: Callable[[], Awaitable[str]], *, out: TextIO | None = None
    ) -> str:
        """Name a new directory that ``make`` creates (returning its write cap),
        under the lock from the check to the write. A cap made is never lost:
        if the alias cannot be written it goes to ``aliases.unsaved``, or, if
        even that fails, to ``out`` (standard output), and the error says so."""
        name = normalize(name)
        async with self.locked_async():
            if name in self.load():
                raise UsageError(f"alias {name!r} already exists")
            cap = await make()
            try:
                self._add_locked(name, cap)
            except (OSError, VeilError) as exc:
                self._keep(name, cap, exc, out or sys.stdout)
        return cap

    def _add_locked(self, name: str, cap: str) -> None:
        entries = self.load()
        if name in entries:
            raise UsageError(
                f"alias {name!r} already exists", hint="choose another name (aliases never change)"
            )
        entries[name] = cap
        self._write("".join(f"{n}: {c}\n" for n, c in entries.items()))

    def _write(self, text: str) -> None:
        """Replace the file atomically from a temporary file of this writer's own."""
        fd, tmp = tempfile.mkstemp(prefix="aliases.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp makes it 0600
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _keep(self, name: str, cap: str, exc: Exception, out: TextIO) -> None:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        try:
            fd = os.open(self.unsaved_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(f"{name}: {cap}\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            out.write(cap + "\n")
            out.flush()
            raise ConfigError(
                f"the directory was made but alias {name!r} could not be saved ({why}); "
                "its write cap is printed above",
                hint="keep it safe: it is the only way to change that directory",
            ) from None
        raise ConfigError(
            f"the directory was made but alias {name!r} could not be written ({why}); "
            f"its write cap was kept in {self.unsaved_path}",
            hint="add it later with: veil add-alias NAME CAP (the cap from that file)",
        ) from None
