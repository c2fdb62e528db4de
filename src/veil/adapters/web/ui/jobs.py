"""Long work started from the UI (a backup, a restore): run in the node, watched.

A ``Job`` runs as an asyncio task in the node's process, so closing the
browser does not stop it; its page (``/ui/jobs/ID``) and JSON
(``/ui/api/jobs/ID``) show files and bytes done out of the total counted
before it began, and then how it ended, in words. Only the last ``KEEP``
jobs are remembered, and only in memory. Job ids are random (one session
cannot guess another's job page, though sessions share the node's jobs).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from veil.errors import VeilError

KEEP = 20
log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    kind: str  # "backup" or "restore"
    title: str
    state: str = "running"  # running, done, partly done, failed
    files: int = 0
    bytes: int = 0
    total_files: int | None = None
    total_bytes: int | None = None
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def on_file(self, size: int, new: bool) -> None:
        self.files += 1
        self.bytes += size

    def on_warning(self, line: str) -> None:
        if len(self.warnings) < 100:
            self.warnings.append(line)

    @property
    def percent(self) -> int | None:
        if self.state != "running":
            return 100 if self.state != "failed" else None
        if self.total_bytes:
            return min(99, int(100 * self.bytes / self.total_bytes))
        if self.total_files:
            return min(99, int(100 * self.files / self.total_files))
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "state": self.state,
            "files": self.files,
            "bytes": self.bytes,
            "total_files": self.total_files,
            "total_bytes": self.total_bytes,
            "percent": self.percent,
            "message": self.message,
            "warnings": self.warnings,
            "started": self.started,
            "finished": self.finished,
        }


Work = Callable[[Job], Awaitable[str]]  # returns the closing line; raises VeilError


class JobBoard:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, kind: str, title: str, work: Work) -> Job:
        job = Job(secrets.token_urlsafe(9), kind, title)
        self.jobs[job.id] = job
        self._tasks[job.id] = asyncio.ensure_future(self._run(job, work))
        for old in list(self.jobs)[:-KEEP]:
            if self.jobs[old].state != "running":
                del self.jobs[old]
        return job

    async def _run(self, job: Job, work: Work) -> None:
        try:
            job.message = await work(job)
            job.state = "partly done" if job.warnings else "done"
        except VeilError as exc:
            job.state, job.message = "failed", str(exc) + (f" ({exc.hint})" if exc.hint else "")
        except asyncio.CancelledError:
            job.state, job.message = "failed", "stopped: the node was shut down"
            raise
        except Exception:  # a bug: say so on the page, keep the details in the log
            log.exception("%s job failed", job.kind)
            job.state, job.message = "failed", "an unexpected error (see the node's log)"
        finally:
            job.finished = time.time()
            self._tasks.pop(job.id, None)

    def recent(self, kind: str) -> list[Job]:
        return [j for j in reversed(self.jobs.values()) if j.kind == kind]

    async def cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
