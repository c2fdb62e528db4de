"""``private/aliases``: a node's names for directory caps, in Tahoe's format.

One ``name: cap`` per line (UTF-8; blank lines and ``#`` comments allowed),
names NFC-normalized and without ``:``. The file holds write caps, so it is
written private (0600) and atomically: a crash leaves the old or the new file,
never half of one.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from veil.errors import ConfigError, UsageError


def normalize(name: str) -> str:
    name = unicodedata.normalize("NFC", name.strip())
    if not name or ":" in name or "\n" in name:
        raise UsageError(f"alias {name!r}: an alias is a non-empty name without ':'")
    return name


class Aliases:
    def __init__(self, node_dir: Path) -> None:
        self.path = node_dir / "private" / "aliases"

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

    def add(self, name: str, cap: str) -> None:
        name = normalize(name)
        entries = self.load()
        if name in entries:
            raise UsageError(
                f"alias {name!r} already exists", hint="choose another name (aliases never change)"
            )
        entries[name] = cap
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(f"{n}: {c}\n" for n, c in entries.items()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
