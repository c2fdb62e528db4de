"""A progress line on stderr for transfers that take more than a moment.

Shown only when stderr is a terminal, and only after ``delay`` seconds, so
scripts and quick transfers see nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self, total: int, label: str, *, stream: TextIO | None = None, delay: float = 0.7
    ) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.start = time.monotonic()
        self.delay = delay
        self.done = 0
        self._last_draw = 0.0
        self._drawn = False

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or now - self._last_draw < 0.1:
            return
        self._last_draw = now
        frac = min(self.done / self.total, 1.0)
        rate = self.done / max(now - self.start, 1e-6) / 1e6
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}% {rate:7.1f} MB/s")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * 72 + "\r")
            self.stream.flush()
