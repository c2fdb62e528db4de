"""An in-process grid: N storage server cores with in-process clients.

For tests of the uploader and downloader that need real server behaviour but
no sockets. Each server has its own ``MemoryBackend`` (or ``DiskBackend``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.in_process_client import LocalStorageClient
from veil.adapters.storage.memory import MemoryBackend
from veil.services.broker import StorageBroker
from veil.services.storage.server import StorageServer


def local_grid(
    count: int, root: Path | None = None, *, batch: bool = False, mutable_batch: bool = False
) -> tuple[StorageBroker, list[LocalStorageClient]]:
    """``batch``: the servers offer veil's batch extension (``wire_batch``);
    ``mutable_batch``: its mutable read too."""
    clients = []
    for i in range(count):
        backend = DiskBackend(root / f"s{i}") if root else MemoryBackend()
        version = b"veil/test +batch-v1" if batch else b"veil/test"
        version += b" +mutable-read-v1" if mutable_batch else b""
        server = StorageServer(backend=backend, application_version=version)
        seed = hashlib.sha256(b"server %d" % i).digest()
        clients.append(
            LocalStorageClient(
                server, server_id=f"v0-test{i:02d}", lease_seed=seed[:20], permutation_seed=seed
            )
        )
    return StorageBroker(clients), clients


C = TypeVar("C", bound=LocalStorageClient)


def same_servers_as(kind: type[C], clients: list[LocalStorageClient]) -> list[C]:
    """The same server cores and identities, reached through ``kind`` (a test's
    subclass that counts or delays some calls)."""
    return [
        kind(
            c.service,
            server_id=c.server_id,
            lease_seed=c.lease_seed,
            permutation_seed=c.permutation_seed,
        )
        for c in clients
    ]
