"""A running node: storage service and/or introducer, for ``veil run``.

On start it makes the TLS identity if the node has none yet (kept in
``private/`` so NURLs survive restarts) and listens on the port chosen at
creation. A storage node writes ``private/announcement.yaml`` (mode 0600: it
holds the swissnum; its id and the ``ann`` a client puts in
``private/servers.yaml``, Tahoe's format including the
``anonymous-storage-FURL`` Tahoe 1.20 clients require) and publishes the
signed announcement to every introducer in ``private/introducers.yaml``,
retrying with backoff. An introducer node writes its NURL to
``private/introducer.furl``.

A Tahoe 1.20 storage node directory is served as it is: the listener is its
``tub.port``, the NURLs are the ones Tahoe announces (one per ``tcp:``/``tor:``
hint of ``tub.location``, Tahoe's ``node.pem`` certificate, the swissnum of
``private/storage.furl``), and its identity files are only read.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from veil import __version__
from veil.adapters.http.storage_server import RunningServer, start_storage_http
from veil.adapters.http.tls import create_identity, server_context, spki_hash_of_pem, tubid_text
from veil.adapters.net.connection_policy import Networks, networks_for
from veil.adapters.node.accounts import ServerAccounts, attach_accounts
from veil.adapters.node.files import present, read_text, warn_once, write_private
from veil.adapters.node.introducer import IntroducerService, publish, start_introducer
from veil.adapters.node.lease_expiry import LeaseExpiryTask, start_lease_expiry
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.node.relay_links import (
    NodeRelays,
    direct_address,
    start_relays,
    with_relay_hints,
)
from veil.adapters.node.renewal_task import ScheduledRenewals, start_scheduled_renewals
from veil.adapters.node.storage_backend import open_storage_backend
from veil.errors import ConfigError, VeilError
from veil.formats import base32
from veil.formats.announcement import sign
from veil.formats.nurl import NURL, parse_nurl
from veil.formats.tor_settings import DEFAULT_ONION_PORT
from veil.services.storage.server import StorageServer

if TYPE_CHECKING:
    from veil.adapters.net.tor import OnionService
    from veil.adapters.node.i2p_destinations import I2PDestinations

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0
ANNOUNCEMENT = "announcement.yaml"  # in private/: it holds the swissnum


def announcement(
    node: NodeDirectory,
    host: str | None,
    port: int,
    onion: tuple[str, int] | None = None,
    i2p: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """The storage announcement: a ``pb://`` NURL for a TCP listener (``host``),
    a ``pb+tor://`` NURL for an onion service (``onion`` = address, port), a
    ``pb+i2p://`` NURL for an I2P destination (``i2p``); for a Tahoe node
    directory, the NURLs and fURL Tahoe itself announces."""
    cert_pem = node.certificate_pem()
    swissnum = node.swissnum()
    spki = spki_hash_of_pem(cert_pem)
    nurls, hints = [], []
    if node.tahoe_layout:
        for scheme, hint_host, hint_port in tahoe_hints(node):
            nurls.append(NURL(scheme, spki, hint_host, hint_port, swissnum).to_string())
        furl = read_text(node.private / "storage.furl").strip()
    else:
        if host is not None:
            nurls.append(NURL("pb", spki, host, port, swissnum).to_string())
            hints.append(f"tcp:{host}:{port}")
        if onion is not None:
            nurls.append(NURL("pb+tor", spki, onion[0], onion[1], swissnum).to_string())
            hints.append(f"tor:{onion[0]}:{onion[1]}")
        if i2p is not None:
            nurls.append(NURL("pb+i2p", spki, i2p[0], i2p[1], swissnum).to_string())
            hints.append(f"i2p:{i2p[0]}:{i2p[1]}")
        furl = f"pb://{tubid_text(cert_pem)}@{','.join(hints)}/{swissnum}"
    return {
        "nickname": node.get("node", "nickname", ""),
        "anonymous-storage-FURL": furl,
        "anonymous-storage-NURLs": nurls,
        "permutation-seed-base32": node.permutation_seed(),
        "my-version": f"veil/{__version__}",
        "oldest-supported": "1.0.0",
    }


def tahoe_hints(node: NodeDirectory) -> list[tuple[str, str, int]]:
    """(scheme, host, port) for each ``tcp:``/``tor:`` hint of a Tahoe node's
    ``tub.location``: Tahoe 1.20 announces one NURL for each (protocol_switch)."""
    out = []
    for hint in node.get("node", "tub.location", "").split(","):
        kind, _, rest = hint.strip().partition(":")
        host, _, port = rest.rpartition(":")
        if kind in ("tcp", "tor") and host and port.isdigit():
            out.append(("pb" if kind == "tcp" else "pb+tor", host, int(port)))
    if not out:
        raise ConfigError(
            f"{node.config_path}: [node] tub.location has no tcp: or tor: hint, so this "
            "Tahoe node announces no HTTPS storage address"
        )
    return out


def tahoe_listener(node: NodeDirectory) -> tuple[str, int]:
    """(interface, port) of a Tahoe node's ``tub.port`` (``tcp:PORT[:interface=IP]``)."""
    text = node.get("node", "tub.port", "").strip()
    fields = text.split(":")
    named = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    plain = [f for f in fields[1:] if "=" not in f]
    port = named.get("port") or (plain[0] if plain else "")
    if fields[0] != "tcp" or "," in text or not port.isdigit():
        raise ConfigError(
            f"{node.config_path}: [node] tub.port = {text!r}: veil serves a Tahoe node "
            "directory only on one tcp:PORT[:interface=ADDRESS] listener"
        )
    return named.get("interface", "0.0.0.0"), int(port)


class StorageNode:
    def __init__(self, path: Path) -> None:
        self.node = NodeDirectory(path)
        self.node.require_network_allowed()
        self.settings = self.node.storage_settings()
        self.run_introducer = self.node.get_bool("introducer", "enabled", False)
        web_port = self.node.get("node", "web.port", "").strip()
        self.web_port = "" if web_port.lower() in ("none", "disabled") else web_port
        if self.settings.enabled and not self.node.get_bool("storage", "anonymous", True):
            raise ConfigError(
                f"{path}: [storage] anonymous = false asks for storage only through plugins, "
                "which veil does not have",
                hint="set [storage] enabled = false, or remove anonymous",
            )
        self.server: StorageServer | None = None
        self.http: RunningServer | None = None
        self.introducer: RunningServer | None = None
        self.web: RunningServer | None = None
        self.nurl = ""
        self.announcement: dict[str, Any] = {}
        self.onion: OnionService | None = None
        self.i2p: I2PDestinations | None = None
        self.web_onion: OnionService | None = None
        self.networks: Networks | None = None
        self._publishers: list[asyncio.Task[None]] = []
        self.relays: NodeRelays | None = None
        self.expiry: LeaseExpiryTask | None = None
        self.renewals: ScheduledRenewals | None = None
        self.accounts: ServerAccounts | None = None

    @property
    def server_id(self) -> str:
        return self.node.node_id()

    def _tls(self) -> tuple[Path, Path]:
        found = self.node.tls_files()
        if found is not None:
            return found
        key, cert = self.node.private / "tls.key", self.node.private / "tls.crt"
        create_identity(key, cert)  # a veil node made before identities came at creation
        return key, cert

    async def start(self) -> None:
        key, cert = self._tls()
        intro_tor = any("pb+tor:" in u for u in self.node.introducers().values())
        self.networks = await networks_for(self.node, need_tor=intro_tor)
        context = server_context(key, cert)
        if self.run_introducer:
            self.introducer = await self._listen("introducer", self._introducer_app(), context)
        if self.settings.enabled:
            self.server = StorageServer(
                backend=open_storage_backend(self.node),  # disk or S3
                reserved_space=self.settings.reserved_space,
                readonly=self.settings.readonly,
                nodeid=base32.a2b(tubid_text(self.node.certificate_pem())),  # in write enablers
            )
            self.expiry = start_lease_expiry(self.node, self.server)  # [storage] expire.*
            index = self.expiry.index if self.expiry is not None else None
            self.accounts = attach_accounts(self.node, self.server, index)  # private/accounts
            self.http = await self._listen("storage", None, context)
            listen = (self._tcp_host("storage") or "127.0.0.1", self.http.port)
            self.relays = await start_relays(self.node, listen, self.networks)
        if self.onion_enabled:
            await self._start_onion()
        if self.i2p_enabled:
            await self._start_i2p(context)
        if self.introducer is not None:
            self._write_introducer_furl(cert)
        if self.server is not None:
            self._announce()
        self.renewals = start_scheduled_renewals(self.node)  # private/renewals-held.yaml
        if self.web_port:
            from veil.adapters.web.gateway import start_web_gateway

            self.web = await start_web_gateway(
                self.node.path, self.web_port, hides_ip=self.node.hides_ip
            )
            if self.node.get_bool("node", "web.onion", False) and self.networks is not None:
                from veil.adapters.web.web_onion import publish_web_onion  # for Tor Browser

                self.web_onion = await publish_web_onion(
                    self.node.path, self.networks, self.web.port
                )

    @property
    def onion_enabled(self) -> bool:
        return self.node.get_bool("tor", "onion", False)

    @property
    def i2p_enabled(self) -> bool:
        return self.node.get_bool("i2p", "dest", False)

    async def _start_i2p(self, context: Any) -> None:
        from veil.adapters.node.i2p_destinations import (
            prewarm_introducer_sessions,
            start_i2p_destinations,
        )

        if self.networks is not None:
            prewarm_introducer_sessions(self.node, self.networks.i2p)
        self.i2p = await start_i2p_destinations(self.node, self.http, self.introducer, context)

    def _tcp_host(self, section: str) -> str | None:
        """The TCP address a service listens on and announces, or None when it is
        reached only as an onion service (or the node hides its IP address)."""
        if self.node.tahoe_layout and section == "storage":
            return tahoe_listener(self.node)[0]
        explicit = "hostname" in self.node.section(section)
        anonymous = self.onion_enabled or self.i2p_enabled
        if anonymous and (self.node.hides_ip or not explicit):
            return None
        return self.node.get(section, "hostname", "127.0.0.1")

    async def _listen(
        self, section: str, app: IntroducerService | None, context: Any
    ) -> RunningServer:
        host = self._tcp_host(section)
        if host is None:  # onion only: a loopback port the onion service forwards to
            bind, port = "127.0.0.1", self.node.get_int("tor", "onion.local_port", 0)
            if section == "introducer" and self.settings.enabled:
                port = 0
        elif self.node.tahoe_layout and section == "storage":
            bind, port = tahoe_listener(self.node)
        else:
            bind, port = host, self.node.get_int(section, "port", 0)
        try:
            if app is not None:
                running = await start_introducer(app, host=bind, port=port, ssl_context=context)
            else:
                assert self.server is not None
                running = await start_storage_http(
                    self.server,
                    self.node.swissnum(),
                    host=bind,
                    port=port,
                    ssl_context=context,
                    accounts=self.accounts,
                )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {bind}:{port}: {exc.strerror or exc}",
                hint=f"choose another [{section}] port in tahoe.cfg, or stop what uses it",
            ) from None
        if host is not None:
            log.info("%s listening at %s:%d", section, host, running.port)
        return running

    def _introducer_app(self) -> IntroducerService:
        swiss_file = self.node.private / "introducer.swissnum"
        if not present(swiss_file):
            write_private(swiss_file, base32.b2a(os.urandom(20)) + "\n")
        return IntroducerService(
            read_text(swiss_file).strip(), self.node.private / "introducer-state.json"
        )

    def _onion_ports(self) -> dict[str, tuple[int, int]]:
        """{service: (port on the onion address, local port)}."""
        external = self.node.get_int("tor", "onion.external_port", DEFAULT_ONION_PORT)
        ports = {}
        if self.http is not None:
            ports["storage"] = (external, self.http.port)
        if self.introducer is not None:
            ports["introducer"] = (external + (1 if ports else 0), self.introducer.port)
        return ports

    async def _start_onion(self) -> None:
        from veil.adapters.net.tor import OnionService

        assert self.networks is not None
        key_blob = self.node.onion_key()
        await self.networks.ensure_tor()  # a launched tor serves the onion too
        endpoint, cookie = await self.networks.control_port()
        self.onion = await OnionService.start(
            endpoint,
            key_blob,
            list(self._onion_ports().values()),
            expected_address=self.node.recorded_onion(),
            password=os.environ.get("TOR_CONTROL_PASSWD"),
            cookie_file=cookie,
        )

    def _write_introducer_furl(self, cert: Path) -> None:
        assert self.introducer is not None
        swissnum = read_text(self.node.private / "introducer.swissnum").strip()
        spki = spki_hash_of_pem(self.node.certificate_pem())
        host = self._tcp_host("introducer")
        i2p = self.i2p.address("introducer") if self.i2p is not None else None
        if host is not None:
            nurl = NURL("pb", spki, host, self.introducer.port, swissnum)
        elif self.onion is None and i2p is not None:
            nurl = NURL("pb+i2p", spki, i2p[0], i2p[1], swissnum)
        else:
            assert self.onion is not None
            port = self._onion_ports()["introducer"][0]
            nurl = NURL("pb+tor", spki, self.onion.address, port, swissnum)
        write_private(self.node.private / "introducer.furl", nurl.to_string() + "\n")

    def _announce(self) -> None:
        assert self.http is not None
        host = direct_address(self.relays, self._tcp_host("storage"))
        onion = None
        if self.onion is not None:
            onion = (self.onion.address, self._onion_ports()["storage"][0])
        i2p = self.i2p.address("storage") if self.i2p is not None else None
        ann = announcement(self.node, host, self.http.port, onion, i2p)
        with_relay_hints(self.node, ann, self.relays)
        hidden = "tor" if onion is not None else "i2p"
        self.nurl = hidden if host is None else f"{host}:{self.http.port}"
        self.announcement = ann
        doc = {"server_id": self.server_id, "ann": ann}
        write_private(self.node.private / ANNOUNCEMENT, yaml.safe_dump(doc))
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
            except VeilError:  # a Tahoe (Foolscap) introducer: serve, but announce elsewhere
                warn_once(
                    f"introducer {petname!r} in private/introducers.yaml is not an HTTPS "
                    "introducer NURL; veil cannot announce to Foolscap introducers"
                )
                continue
            self._publishers.append(asyncio.ensure_future(self._publish(petname, nurl, signed)))

    async def _publish(self, petname: str, nurl: NURL, signed: Any) -> None:
        delay = 1.0
        while True:
            try:
                await publish(nurl, signed, self.networks, petname)
                log.info("announced to introducer %s", petname)
                return
            except VeilError as exc:
                log.warning("introducer %s: %s; retrying in %.0f s", petname, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    def describe(self) -> str:
        """What runs and how it is reached, for the log (no onion addresses)."""
        parts = []
        for name, running in (("storage", self.http), ("introducer", self.introducer)):
            if running is None:
                continue
            host = self._tcp_host(name)
            ways = [f"tcp {host}:{running.port}"] if host is not None else []
            if self.onion is not None:
                ways.append("tor onion service")
            if self.i2p is not None and self.i2p.address(name) is not None:
                ways.append("i2p destination")
            parts.append(f"{name} via {' and '.join(ways)}")
        if self.relays is not None:
            parts.append(self.relays.describe())
        if self.web is not None:
            parts.append(f"web gateway on {self.web_port}")
        return "; ".join(parts) or "nothing"

    async def stop(self) -> None:
        for task in self._publishers:
            task.cancel()
        (self.node.private / ANNOUNCEMENT).unlink(missing_ok=True)
        if self.relays is not None:
            await self.relays.stop()
        for service in (self.onion, self.web_onion):
            if service is not None:
                await service.stop()
        if self.i2p is not None:
            await self.i2p.stop()
        if self.networks is not None:
            await self.networks.close()
        for running in (self.http, self.introducer, self.web):
            if running is not None:
                await running.stop()
        if self.expiry is not None:
            await self.expiry.stop()
        if self.renewals is not None:
            await self.renewals.stop()
        close = getattr(self.server.backend if self.server else None, "close", None)
        if close is not None:  # the S3 backend's client and loop thread
            close()
