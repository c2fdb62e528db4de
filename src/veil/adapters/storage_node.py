"""A running storage node: disk backend, server core, HTTPS listener, announcement.

Assembles the pieces for ``veil run``. On start it makes the TLS identity if
the node has none yet (kept in ``private/`` so the NURL survives restarts),
listens, and writes ``announcement.yaml``: the node id and the announcement
a client copies into its ``private/servers.yaml`` (Tahoe's format, including
the ``anonymous-storage-FURL`` that Tahoe 1.20 clients require).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from veil import __version__
from veil.adapters.disk_backend import DiskBackend
from veil.adapters.http_server import RunningServer, start_storage_http
from veil.adapters.nodedir import NodeDirectory
from veil.adapters.tls import create_identity, server_context, spki_hash_of_pem, tubid_text
from veil.errors import ConfigError
from veil.formats import base32
from veil.formats.nurl import NURL
from veil.services.storage_server import StorageServer


def announcement(node: NodeDirectory, host: str, port: int) -> dict[str, Any]:
    cert_pem = (node.private / "tls.crt").read_bytes()
    swissnum = node.swissnum()
    nurl = NURL("pb", spki_hash_of_pem(cert_pem), host, port, swissnum)
    node_id = node.node_id()
    seed = base32.b2a(node_id.removeprefix("v0-").encode("ascii"))
    return {
        "nickname": node.get("node", "nickname", node.path.name),
        "anonymous-storage-FURL": f"pb://{tubid_text(cert_pem)}@tcp:{host}:{port}/{swissnum}",
        "anonymous-storage-NURLs": [nurl.to_string()],
        "permutation-seed-base32": seed,
        "my-version": f"veil/{__version__}",
        "oldest-supported": "1.0.0",
    }


class StorageNode:
    def __init__(self, path: Path) -> None:
        self.node = NodeDirectory(path)
        self.node.require_network_allowed()
        self.settings = self.node.storage_settings()
        if not self.settings.enabled:
            raise ConfigError(
                f"{path}: [storage] enabled = false, so there is nothing to run",
                hint="client-only nodes need no 'veil run'; use veil put/get directly",
            )
        self.server: StorageServer | None = None
        self.http: RunningServer | None = None
        self.nurl = ""

    @property
    def server_id(self) -> str:
        return self.node.node_id()

    async def start(self) -> None:
        key, cert = self.node.private / "tls.key", self.node.private / "tls.crt"
        if not key.exists() or not cert.exists():
            create_identity(key, cert)
        s = self.settings
        self.server = StorageServer(
            backend=DiskBackend(self.node.path / "storage"),
            reserved_space=s.reserved_space,
            readonly=s.readonly,
        )
        try:
            self.http = await start_storage_http(
                self.server,
                self.node.swissnum(),
                host=s.hostname,
                port=s.port,
                ssl_context=server_context(key, cert),
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {s.hostname}:{s.port}: {exc.strerror or exc}",
                hint="choose another [storage] port in tahoe.cfg, or stop what uses it",
            ) from None
        ann = announcement(self.node, s.hostname, self.http.port)
        self.nurl = ann["anonymous-storage-NURLs"][0].split("@")[1].split("/")[0]
        tmp = self.node.path / "announcement.yaml.tmp"
        tmp.write_text(yaml.safe_dump({"server_id": self.server_id, "ann": ann}))
        os.replace(tmp, self.node.path / "announcement.yaml")

    async def stop(self) -> None:
        (self.node.path / "announcement.yaml").unlink(missing_ok=True)
        if self.http is not None:
            await self.http.stop()
