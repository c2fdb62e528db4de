"""What backup and restore say while they run: a progress line, or JSON lines.

On a terminal (stderr) a line with files, bytes, rate and ETA is redrawn a
few times a second; with ``--json`` every line on stdout is one JSON object
with a ``message_type`` of ``status`` (about once a second), ``warning``,
``error`` or ``summary``, as restic's ``--json`` does. Otherwise only
warnings and the closing summary are written.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from veil.formats.cap_display import scrub
from veil.services.backup.metadata import Excluder

REDRAW = 0.2
JSON_EVERY = 1.0


def scan_totals(root: Path, excluder: Excluder) -> tuple[int, int]:
    """Files and bytes below ``root`` (regular files, after excludes), for the ETA."""
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not excluder.excluded(d)]
        for name in filenames:
            if excluder.excluded(name):
                continue
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
    return files, size


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Reporter:
    def __init__(
        self,
        verb: str,
        *,
        as_json: bool,
        total_files: int | None = None,
        total_bytes: int | None = None,
        err: TextIO | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.verb = verb
        self.as_json = as_json
        self.err = err or sys.stderr
        self.out = out or sys.stdout
        self.live = not as_json and self.err.isatty()
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.files = self.bytes = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def emit(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"message_type": kind, **fields}, sort_keys=True)
        self.out.write(scrub(line) + "\n")
        self.out.flush()

    def file(self, nbytes: int, new: bool = True) -> None:
        self.files += 1
        self.bytes += nbytes
        now = time.monotonic()
        if now - self._last < (JSON_EVERY if self.as_json else REDRAW):
            return
        self._last = now
        if self.as_json:
            self.emit("status", **self.status(now))
        elif self.live:
            self._draw(now)

    def status(self, now: float) -> dict[str, Any]:
        elapsed = max(now - self.start, 1e-6)
        fields: dict[str, Any] = {
            "seconds_elapsed": round(elapsed, 1),
            "files_done": self.files,
            "bytes_done": self.bytes,
        }
        if self.total_files is not None and self.total_bytes is not None:
            fields["total_files"] = self.total_files
            fields["total_bytes"] = self.total_bytes
            done = self.bytes / self.total_bytes if self.total_bytes else 1.0
            fields["percent_done"] = round(min(done, 1.0), 4)
            rate = self.bytes / elapsed
            left = max(self.total_bytes - self.bytes, 0)
            fields["seconds_remaining"] = round(left / rate) if rate > 0 else None
        return fields

    def _draw(self, now: float) -> None:
        s = self.status(now)
        rate = self.bytes / max(now - self.start, 1e-6)
        line = f"{self.verb}: {self.files}"
        if self.total_files is not None:
            line += f"/{self.total_files}"
        line += f" files, {_human(self.bytes)}"
        if self.total_bytes is not None:
            line += f"/{_human(self.total_bytes)}"
        line += f", {_human(rate)}/s"
        eta = s.get("seconds_remaining")
        if eta is not None:
            line += f", ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        self.err.write("\r" + line[:100].ljust(100) + "\r")
        self.err.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self.err.write("\r" + " " * 100 + "\r")
            self.err.flush()
            self._drawn = False

    def warning(self, line: str) -> None:
        if self.as_json:
            self.emit("warning", message=line)
            return
        self._clear()
        self.err.write(scrub(f"veil: warning: {line}") + "\n")

    def summary(self, text: str, **fields: Any) -> None:
        self._clear()
        if self.as_json:
            self.emit("summary", seconds_elapsed=round(time.monotonic() - self.start, 2), **fields)
        else:
            self.out.write(scrub(text) + "\n")
