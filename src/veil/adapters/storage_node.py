"""A running node: storage service and/or introducer, for ``veil run``.

On start it makes the TLS identity if the node has none yet (kept in
``private/`` so NURLs survive restarts) and listens. A storage node writes
``announcement.yaml`` (its id and the ``ann`` a client puts in
``private/servers.yaml``, Tahoe's format including the
``anonymous-storage-FURL`` Tahoe 1.20 clients require) and publishes the
signed announcement to every introducer in ``private/introducers.yaml``,
retrying with backoff. An introducer node writes its NURL to
``private/introducer.furl``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from veil import __version__
from veil.adapters.disk_backend import DiskBackend
from veil.adapters.http_server import RunningServer, start_storage_http
from veil.adapters.introducer import IntroducerService, publish, start_introducer
from veil.adapters.nodedir import NodeDirectory
from veil.adapters.tls import create_identity, server_context, spki_hash_of_pem, tubid_text
from veil.errors import ConfigError, VeilError
from veil.formats import base32
from veil.formats.announcement import sign
from veil.formats.nurl import NURL, parse_nurl
from veil.services.storage_server import StorageServer

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0


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
        self.run_introducer = self.node.get_bool("introducer", "enabled", False)
        self.web_port = self.node.get("node", "web.port", "").strip()
        if not self.settings.enabled and not self.run_introducer and not self.web_port:
            raise ConfigError(
                f"{path}: [storage] enabled = false, so there is nothing to run",
                hint="client-only nodes need no 'veil run' unless [node] web.port is set",
            )
        self.server: StorageServer | None = None
        self.http: RunningServer | None = None
        self.introducer: RunningServer | None = None
        self.web: RunningServer | None = None
        self.nurl = ""
        self._publishers: list[asyncio.Task[None]] = []

    @property
    def server_id(self) -> str:
        return self.node.node_id()

    def _tls(self) -> tuple[Path, Path]:
        key, cert = self.node.private / "tls.key", self.node.private / "tls.crt"
        if not key.exists() or not cert.exists():
            create_identity(key, cert)
        return key, cert

    async def start(self) -> None:
        key, cert = self._tls()
        if self.run_introducer:
            await self._start_introducer(key, cert)
        if self.settings.enabled:
            await self._start_storage(key, cert)
        if self.web_port:
            from veil.adapters.web_gateway import start_web_gateway

            self.web = await start_web_gateway(self.node.path, self.web_port)

    async def _start_introducer(self, key: Path, cert: Path) -> None:
        host = self.node.get("introducer", "hostname", "127.0.0.1")
        port = self.node.get_int("introducer", "port", 0)
        swiss_file = self.node.private / "introducer.swissnum"
        if not swiss_file.exists():
            swiss_file.write_text(base32.b2a(os.urandom(20)) + "\n")
            os.chmod(swiss_file, 0o600)
        service = IntroducerService(
            swiss_file.read_text().strip(), self.node.path / "introducer-state.json"
        )
        try:
            self.introducer = await start_introducer(
                service, host=host, port=port, ssl_context=server_context(key, cert)
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="choose another [introducer] port in tahoe.cfg",
            ) from None
        nurl = NURL(
            "pb",
            spki_hash_of_pem(cert.read_bytes()),
            host,
            self.introducer.port,
            swiss_file.read_text().strip(),
        )
        (self.node.private / "introducer.furl").write_text(nurl.to_string() + "\n")
        log.info("introducer listening at %s:%d", host, self.introducer.port)

    async def _start_storage(self, key: Path, cert: Path) -> None:
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
        full = {
            **ann,
            "service-name": "storage",
            "version": 0,
            "app-versions": [],
            "seqnum": self.node.next_seqnum(),
            "nonce": base32.b2a(os.urandom(32)),
        }
        signed = sign(full, self.node.node_key())
        for petname, text in self.node.introducers().items():
            try:
                nurl = parse_nurl(text)
            except VeilError:
                raise ConfigError(
                    f"introducer {petname!r} in private/introducers.yaml is not an HTTPS "
                    "introducer NURL (veil cannot use Foolscap introducers)"
                ) from None
            self._publishers.append(asyncio.ensure_future(self._publish(petname, nurl, signed)))

    async def _publish(self, petname: str, nurl: NURL, signed: Any) -> None:
        delay = 1.0
        while True:
            try:
                await publish(nurl, signed)
                log.info("announced to introducer %s", petname)
                return
            except VeilError as exc:
                log.warning("introducer %s: %s; retrying in %.0f s", petname, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    async def stop(self) -> None:
        for task in self._publishers:
            task.cancel()
        (self.node.path / "announcement.yaml").unlink(missing_ok=True)
        for running in (self.http, self.introducer, self.web):
            if running is not None:
                await running.stop()
