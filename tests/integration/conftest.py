"""Fixtures that run real HTTPS storage servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from veil.adapters.http.storage_client import HttpStorageClient
from veil.adapters.http.storage_server import RunningServer, start_storage_http
from veil.adapters.http.tls import create_identity, server_context, spki_hash_of_pem
from veil.adapters.storage.disk import DiskBackend
from veil.formats.nurl import NURL
from veil.services.storage.server import StorageServer

SWISSNUM = "cpqn4ejbkqla2rwfjr2oekewjnbecauu"


@dataclass
class LiveServer:
    core: StorageServer
    http: RunningServer
    nurl: NURL
    cert_dir: Path

    def client(self, **kw: object) -> HttpStorageClient:
        seed = hashlib.sha256(self.nurl.spki_hash.encode()).digest()
        return HttpStorageClient(
            self.nurl,
            server_id="v0-" + self.nurl.spki_hash[:20],
            lease_seed=seed[:20],
            permutation_seed=seed,
            **kw,  # type: ignore[arg-type]
        )


async def start_live_server(root: Path, **core_kw: object) -> LiveServer:
    root.mkdir(parents=True, exist_ok=True)
    key, cert = root / "tls.key", root / "tls.crt"
    if not cert.exists():
        create_identity(key, cert)
    core = StorageServer(backend=DiskBackend(root / "storage"), **core_kw)  # type: ignore[arg-type]
    http = await start_storage_http(
        core, SWISSNUM, host="127.0.0.1", port=0, ssl_context=server_context(key, cert)
    )
    nurl = NURL("pb", spki_hash_of_pem(cert.read_bytes()), "127.0.0.1", http.port, SWISSNUM)
    return LiveServer(core, http, nurl, root)


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    server = await start_live_server(tmp_path / "server")
    yield server
    await server.http.stop()
