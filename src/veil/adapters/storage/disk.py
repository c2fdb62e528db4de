"""Shares on disk in Tahoe-LAFS's storage directory layout.

    STORAGEDIR/shares/<2 b32 chars>/<b32 SI>/<shnum>             finished shares
    STORAGEDIR/shares/incoming/<2 b32 chars>/<b32 SI>/<shnum>    uploads in progress
    STORAGEDIR/corruption-advisories/<time>--<b32 SI>-<shnum>    reports

Each file is a Tahoe share container (``veil.formats.container``), so a Tahoe
server's directory can be served as it is and vice versa. Incoming files are
moved into place only when complete, after an fsync (a batch's shares: all
renamed, then one flush for them all, ``deferred_flush``); a restart deletes what
is left in ``incoming/``, so no partial share is ever readable. A file that is
not a valid container is logged once and treated as absent (the ``Backend``
contract); an upload of that share replaces it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from veil.adapters.storage.durable import flush_many, fsync_path
from veil.errors import FormatError, VeilError
from veil.formats import base32
from veil.formats.container import (
    HEADER_SIZE,
    LEASE_SIZE,
    Lease,
    data_length,
    new_header,
    pack_leases,
    parse_header,
    parse_leases,
)
from veil.formats.mutable_container import MAGIC_PREFIX, is_mutable
from veil.services.storage.backend import report_unreadable


def _problem(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


@functools.lru_cache(maxsize=4096)
def _si_name(si: bytes) -> str:
    """A storage index's directory name (one base32 text per recent index)."""
    return base32.b2a(si)


class DiskIncomingShare:
    def __init__(self, backend: DiskBackend, si: bytes, shnum: int, allocated_size: int) -> None:
        self._backend = backend
        self.path = backend.incoming_path(si, shnum)
        self.final = backend._path(si, shnum)
        self.allocated_size = allocated_size
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.pwrite(self._fd, new_header(allocated_size).pack(), 0)

    def write(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        pos = HEADER_SIZE + offset
        while view:
            n = os.pwrite(self._fd, view, pos)
            view, pos = view[n:], pos + n

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, HEADER_SIZE + offset)

    def finalize(self, leases: list[Lease]) -> None:
        os.pwrite(self._fd, pack_leases(leases), HEADER_SIZE + self.allocated_size)
        os.pwrite(self._fd, new_header(self.allocated_size, len(leases)).pack(), 0)
        pending = self._backend.pending_sync()
        if pending is None:
            os.fsync(self._fd)
        os.close(self._fd)
        directory = os.path.dirname(self.final)
        os.makedirs(directory, exist_ok=True)
        os.replace(self.path, self.final)
        if pending is None:
            fsync_path(directory, directory=True)
        else:
            pending.append(self.final)

    def abort(self) -> None:
        os.close(self._fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class DiskBackend:
    """A ``Backend`` over a Tahoe-compatible storage directory."""

    def __init__(self, root: Path, *, discard_incoming: bool = True) -> None:
        """``discard_incoming=False`` only inspects: use it on a directory another
        server (e.g. a running Tahoe) owns."""
        self.root = root
        self.shares = root / "shares"
        self.incoming = self.shares / "incoming"
        self._shares_text = str(self.shares)
        self._deferred = threading.local()
        self.advisories = root / "corruption-advisories"
        self.shares.mkdir(parents=True, exist_ok=True)
        if discard_incoming:
            # Uploads that were in progress when the server stopped can never complete.
            shutil.rmtree(self.incoming, ignore_errors=True)
            self.incoming.mkdir(parents=True, exist_ok=True)

    def pending_sync(self) -> list[str] | None:
        """The shares this thread completes inside ``deferred_flush``, else None."""
        return getattr(self._deferred, "pending", None)

    @contextlib.contextmanager
    def deferred_flush(self) -> Iterator[Callable[[], None]]:
        """Shares completed inside are flushed by the function it gives: every file,
        then every directory, back to back (the first flush commits them all)."""
        pending: list[str] = []
        self._deferred.pending = pending
        try:
            yield lambda: flush_many(pending)
        finally:
            self._deferred.pending = None

    def share_dir(self, si: bytes) -> Path:
        return Path(self._dir(si))

    def _dir(self, si: bytes) -> str:
        s = _si_name(si)  # plain text paths: pathlib costs more than the syscalls here
        return f"{self._shares_text}/{s[:2]}/{s}"

    def incoming_path(self, si: bytes, shnum: int) -> str:
        """Where a share is written until it is complete: one flat directory (no
        directory made and removed per share; only this server ever reads it)."""
        return f"{self._shares_text}/incoming/{_si_name(si)}.{shnum}"

    def remove_empty(self, directory: Path) -> None:
        for d in (directory, directory.parent):
            if d in (self.incoming, self.shares):
                return
            try:
                d.rmdir()
            except OSError:
                return

    def _numbered(self, storage_index: bytes) -> dict[int, bool]:
        """{share number: is a mutable container} of the files of a storage index."""
        directory = self._dir(storage_index)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return {}
        out = {}
        for name in names:
            if not (name.isdigit() and len(name) <= 3):
                continue
            shnum = int(name)
            try:
                with open(f"{directory}/{name}", "rb") as f:
                    head = f.read(max(HEADER_SIZE, len(MAGIC_PREFIX)))
                    if not is_mutable(head):
                        data_length(os.fstat(f.fileno()).st_size, parse_header(head))
                out[shnum] = is_mutable(head)
            except FileNotFoundError:
                continue
            except (OSError, FormatError) as exc:
                report_unreadable(self, storage_index, shnum, _problem(exc))
        return out

    def list_shares(self, storage_index: bytes) -> frozenset[int]:
        return frozenset(n for n, mutable in self._numbered(storage_index).items() if not mutable)

    # -- mutable containers (raw bytes; the storage core interprets them) --

    def list_slots(self, storage_index: bytes) -> frozenset[int]:
        return frozenset(n for n, mutable in self._numbered(storage_index).items() if mutable)

    def read_slot(self, storage_index: bytes, share_number: int, offset: int, length: int) -> bytes:
        try:
            fd = os.open(self._path(storage_index, share_number), os.O_RDONLY)
        except FileNotFoundError:
            raise KeyError(share_number) from None
        except OSError as exc:
            report_unreadable(self, storage_index, share_number, _problem(exc))
            raise KeyError(share_number) from None
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def write_slot(
        self, storage_index: bytes, share_number: int, writes: list[tuple[int, bytes]]
    ) -> None:
        """Apply ``writes`` (offset, bytes) to a container, creating it, then fsync."""
        path = self._path(storage_index, share_number)
        created = not os.path.exists(path)
        if created:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            for offset, data in writes:
                os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_path(str(Path(path).parent), directory=True)

    def delete_slot(self, storage_index: bytes, share_number: int) -> None:
        path = Path(self._path(storage_index, share_number))
        path.unlink(missing_ok=True)
        self.remove_empty(path.parent)

    def delete_share(self, storage_index: bytes, share_number: int) -> None:
        """Remove a finished immutable share (lease expiry)."""
        path = Path(self._path(storage_index, share_number))
        path.unlink(missing_ok=True)
        self.remove_empty(path.parent)

    def storage_indexes(self) -> list[bytes]:
        """Every storage index with a directory under ``shares/`` (not incoming)."""
        out = []
        for prefix in os.scandir(self.shares):
            if prefix.name == "incoming" or not prefix.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(prefix.path):
                try:
                    si = base32.a2b(entry.name)
                except VeilError:
                    continue
                if len(si) == 16 and entry.name.startswith(prefix.name):
                    out.append(si)
        return out

    def create_incoming(
        self, storage_index: bytes, share_number: int, allocated_size: int
    ) -> DiskIncomingShare:
        return DiskIncomingShare(self, storage_index, share_number, allocated_size)

    def _path(self, si: bytes, shnum: int) -> str:
        return f"{self._dir(si)}/{shnum}"

    def _open(self, si: bytes, shnum: int) -> tuple[int, int, int]:
        """(fd, data length, container version); ``KeyError`` when missing or
        not a valid immutable container."""
        try:
            fd = os.open(self._path(si, shnum), os.O_RDONLY)
        except FileNotFoundError:
            raise KeyError(shnum) from None
        except OSError as exc:
            report_unreadable(self, si, shnum, _problem(exc))
            raise KeyError(shnum) from None
        try:
            header = parse_header(os.pread(fd, HEADER_SIZE, 0))
            return fd, data_length(os.fstat(fd).st_size, header), header.version
        except (OSError, FormatError) as exc:
            os.close(fd)
            report_unreadable(self, si, shnum, _problem(exc))
            raise KeyError(shnum) from None

    def share_length(self, storage_index: bytes, share_number: int) -> int:
        fd, length, _ = self._open(storage_index, share_number)
        os.close(fd)
        return length

    def read_share(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        fd, total, _ = self._open(storage_index, share_number)
        try:
            length = max(0, min(length, total - offset))
            return os.pread(fd, length, HEADER_SIZE + offset)
        finally:
            os.close(fd)

    def uses_hashed_leases(self, storage_index: bytes, share_number: int) -> bool:
        fd, _, version = self._open(storage_index, share_number)
        os.close(fd)
        return version == 2

    def get_leases(self, storage_index: bytes, share_number: int) -> list[Lease]:
        fd, length, version = self._open(storage_index, share_number)
        try:
            size = os.fstat(fd).st_size - HEADER_SIZE - length
            raw = os.pread(fd, size, HEADER_SIZE + length)
        finally:
            os.close(fd)
        return parse_leases(raw, hashed=version == 2)

    def set_leases(self, storage_index: bytes, share_number: int, leases: list[Lease]) -> None:
        path = self._path(storage_index, share_number)
        fd = os.open(path, os.O_RDWR)
        try:
            header = parse_header(os.pread(fd, HEADER_SIZE, 0))
            length = data_length(os.fstat(fd).st_size, header)
            end = HEADER_SIZE + length
            os.pwrite(fd, pack_leases(leases), end)
            os.ftruncate(fd, end + LEASE_SIZE * len(leases))
            header_bytes = type(header)(header.version, header.legacy_length, len(leases)).pack()
            os.pwrite(fd, header_bytes, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def add_corruption_advisory(self, storage_index: bytes, share_number: int, reason: str) -> None:
        self.advisories.mkdir(exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime())
        name = f"{stamp}--{base32.b2a(storage_index)}-{share_number}"
        text = f"storage_index: {base32.b2a(storage_index)}\nshare_number: {share_number}\n\n"
        with open(self.advisories / name, "a", encoding="utf-8") as f:
            f.write(text + reason + "\n")

    def corruption_advisory_bytes(self) -> int:
        try:
            entries = list(os.scandir(self.advisories))
        except FileNotFoundError:
            return 0
        return sum(e.stat().st_size for e in entries if e.is_file(follow_symlinks=False))

    def free_space(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize
