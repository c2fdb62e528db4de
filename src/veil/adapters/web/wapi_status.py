"""``/status?t=json``: uploads and downloads in progress and just finished, as Tahoe's.

Tahoe 1.20 lists its operations as ``{"active": [...], "recent": [...]}``, each
``{"type", "storage-index-string", "total-size", "status"}``; veil adds
``"progress"`` (0.0 to 1.0, bytes done over bytes to do), so a program
watching a large upload through the gateway sees it advance. The storage
index is named (every server knows it), never a cap. The last ``RECENT``
finished operations are kept, in memory only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

RECENT = 20


@dataclass
class Transfer:
    kind: str  # "upload" or "download"
    total: int
    done: int = 0
    storage_index: str = ""
    status: str = "started"

    def advance(self, n: int) -> None:
        self.done += n

    def json(self) -> dict[str, Any]:
        progress = 1.0 if self.total == 0 else min(1.0, self.done / self.total)
        if self.status == "Finished":
            progress = 1.0
        return {
            "type": self.kind,
            "storage-index-string": self.storage_index,
            "total-size": self.total,
            "status": self.status,
            "progress": round(progress, 4),
        }


class Transfers:
    def __init__(self) -> None:
        self.active: list[Transfer] = []
        self.recent: deque[Transfer] = deque(maxlen=RECENT)

    @contextmanager
    def track(self, kind: str, total: int, storage_index: str = "") -> Iterator[Transfer]:
        transfer = Transfer(kind, total, storage_index=storage_index, status=kind.title() + "ing")
        self.active.append(transfer)
        try:
            yield transfer
            transfer.status = "Finished"
        except BaseException:
            transfer.status = "Failed"
            raise
        finally:
            self.active.remove(transfer)
            self.recent.appendleft(transfer)

    def json(self) -> dict[str, Any]:
        return {
            "active": [t.json() for t in self.active],
            "recent": [t.json() for t in self.recent],
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("t") != "json":
            lines = [f"{t.kind} {t.status} {t.done}/{t.total}" for t in self.active]
            return web.Response(text="\n".join(lines or ["no operations in progress"]) + "\n")
        import json

        return web.Response(
            body=json.dumps(self.json(), indent=1).encode() + b"\n",
            headers={"Content-Type": "application/json"},
        )
