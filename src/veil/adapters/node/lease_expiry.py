"""The storage node's lease expiry task: policy from tahoe.cfg, index, schedule.

``start_lease_expiry`` reads ``[storage] expire.*`` (Tahoe's keys and rules,
``veil.services.storage.expiry``), opens the SQLite lease index in the
storage directory, tells the server core to report every lease change to
it, builds the index at once if it was lost, and runs an expiry pass every
``policy.crawl_interval()`` seconds (a quarter of
``expire.override_lease_duration``, at most an hour), the first one an
interval after start-up (Tahoe's crawler too waits after start: 5 minutes). After each pass the
figures go to ``STORAGEDIR/expiry-status.json`` for the welcome page
(``veil.adapters.node.server_status.storage_figures``).

The index is kept even when expiry is off, for the figures. A backend that
cannot list and delete shares cannot expire: asking it to is a start-up error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.storage.lease_index import FILENAME, SQLiteLeaseIndex
from veil.errors import ConfigError
from veil.services.storage.expiry import ExpiringBackend, LeaseExpirer, policy_from_settings
from veil.services.storage.server import StorageServer

log = logging.getLogger("veil.storage.expiry")
STATUS_FILE = "expiry-status.json"


class LeaseExpiryTask:
    def __init__(self, expirer: LeaseExpirer, index: SQLiteLeaseIndex, status: Path) -> None:
        self.expirer = expirer
        self.index = index
        self.status = status
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        interval = self.expirer.policy.crawl_interval()
        prepared = False
        while True:
            try:
                if not prepared:  # the index at once (rebuilt if lost), expiry later
                    await asyncio.to_thread(self.expirer.prepare)
                    prepared = True
                else:
                    await asyncio.to_thread(self.expirer.run_pass)
                await asyncio.to_thread(self._write_status)
            except Exception as exc:  # a bad pass must not stop the next one
                log.error("lease expiry pass failed: %s", exc)
            await asyncio.sleep(interval)

    def _write_status(self) -> None:
        tmp = self.status.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.expirer.figures(), sort_keys=True))
        os.replace(tmp, self.status)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.index.close()


def start_lease_expiry(node: NodeDirectory, server: StorageServer) -> LeaseExpiryTask | None:
    policy = policy_from_settings(lambda key, default: node.get("storage", key, default))
    backend = server.backend
    if not (hasattr(backend, "storage_indexes") and hasattr(backend, "delete_share")):
        if policy.enabled:
            raise ConfigError(
                f"{node.config_path}: [storage] expire.enabled = true, but this storage "
                "backend cannot list and delete shares",
                hint="use backend = disk, or set expire.enabled = false",
            )
        return None
    directory = node.storage_dir()
    directory.mkdir(parents=True, exist_ok=True)
    index = SQLiteLeaseIndex(directory / FILENAME)
    expiring: ExpiringBackend = backend  # type: ignore[assignment]
    expirer = LeaseExpirer(expiring, index, policy, lock=server.lease_lock)
    server.lease_observer = expirer.refresh
    task = LeaseExpiryTask(expirer, index, directory / STATUS_FILE)
    task.start()
    return task
