"""A client built from a node directory: its servers, secrets and parameters.

``open_client(path)`` reads ``tahoe.cfg`` and ``private/servers.yaml``, makes
one HTTPS ``StorageClient`` per announced server, and hands out uploaders and
downloaders that share one ``StorageBroker``. Used as an async context
manager so every connection is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.adapters.http.storage_client import HttpStorageClient
from veil.adapters.net.connection_policy import TOR_SCHEME, Networks, is_i2p, networks_for
from veil.adapters.net.tcp import NetworkProvider
from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError, VeilError
from veil.formats import base32
from veil.formats.hashes import sha256d
from veil.formats.nurl import NURL, parse_furl, parse_nurl
from veil.formats.params import EncodingParameters
from veil.services.broker import StorageBroker
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.services.mutable.server_map import RecentWrites
from veil.services.patience import I2P_PATIENCE, PATIENCE, TOR_PATIENCE

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from veil.services.directories import Directories
    from veil.services.mutable.files import MutableFiles

V0_PREFIX = "v0-"
log = logging.getLogger(__name__)


def permutation_seed_for(server_id: str, ann: dict[str, Any]) -> bytes:
    """The seed Tahoe sorts a server by (digest §4.2), from its announcement."""
    seed = ann.get("permutation-seed-base32")
    if isinstance(seed, str) and seed:
        try:
            return base32.a2b(seed)
        except VeilError:
            raise ConfigError(f"server {server_id}: bad permutation-seed-base32") from None
    if server_id.startswith(V0_PREFIX):
        try:
            return base32.a2b(server_id[len(V0_PREFIX) :])
        except VeilError:
            pass
    return hashlib.sha256(server_id.encode("utf-8")).digest()


def server_nurls(server_id: str, ann: dict[str, Any]) -> list[NURL]:
    """The NURLs of an announcement that this version can read (others skipped)."""
    nurls = ann.get("anonymous-storage-NURLs") or []
    if not isinstance(nurls, list) or not nurls:
        raise ConfigError(
            f"server {server_id} announces no anonymous-storage-NURLs",
            hint="veil speaks only Tahoe's HTTP storage protocol, not Foolscap",
        )
    parsed = []
    for text in nurls:
        try:
            parsed.append(parse_nurl(str(text)))
        except VeilError:
            continue  # a form this version cannot use: skipped, never guessed
    return parsed


def foolscap_only(ann: dict[str, Any]) -> bool:
    """True for an entry with a fURL and no NURL: a Tahoe server with
    ``force_foolscap``, or one pasted from Tahoe's introducer cache."""
    return not ann.get("anonymous-storage-NURLs") and bool(ann.get("anonymous-storage-FURL"))


def needs_tor(server_id: str, ann: dict[str, Any]) -> bool:
    """True when the server can be reached only as an onion service."""
    try:
        nurls = server_nurls(server_id, ann)
    except VeilError:
        return False
    return bool(nurls) and all(n.scheme == TOR_SCHEME for n in nurls)


def needs_i2p(server_id: str, ann: dict[str, Any]) -> bool:
    """True when the server can be reached only through I2P."""
    try:
        nurls = server_nurls(server_id, ann)
    except VeilError:
        return False
    return bool(nurls) and all(is_i2p(n) for n in nurls)


def storage_client_for(
    server_id: str, ann: dict[str, Any], networks: Networks | NetworkProvider
) -> HttpStorageClient:
    """An HTTPS client for one ``servers.yaml`` / announcement entry."""
    if not isinstance(networks, Networks):
        provider = networks
        networks = Networks(
            provider if provider.name == "tcp" else None,
            provider if provider.name == "tor" else None,
            anonymous=False,
            tor_problem="Tor is not configured",
        )
    parsed = server_nurls(server_id, ann)
    usable = networks.usable(parsed)
    if not usable:
        raise ConfigError(
            f"server {server_id[:16]} cannot be reached: {networks.why_unreachable(parsed)}"
        )
    (nurl, provider), *alternatives = usable  # every announced address is tried
    furl = ann.get("anonymous-storage-FURL")
    lease_seed = parse_furl(str(furl)).tubid if furl else sha256d(nurl.spki_hash.encode())[:20]
    return HttpStorageClient(
        nurl,
        server_id=server_id,
        lease_seed=lease_seed,
        permutation_seed=permutation_seed_for(server_id, ann),
        network=provider,
        alternatives=alternatives,
    )


@dataclass
class Client:
    node: NodeDirectory
    broker: StorageBroker
    params: EncodingParameters
    announcements: dict[str, dict[str, Any]]
    networks: Networks | None = None  # how servers are reached (for servers found later)
    # new mutable files' signing keys; a running node sets a pool (``key_pool``)
    keygen: Callable[[], rsa.RSAPrivateKey] | None = None
    # the server maps of this client's own latest mutable writes, for its next change
    recent_writes: RecentWrites = field(default_factory=RecentWrites)

    def lease_secret(self) -> bytes:
        return self.node.lease_secret()

    def uploader(self, *, progress: Callable[[int], None] | None = None) -> Uploader:
        return Uploader(
            self.broker,
            self.params,
            lease_secret=self.node.lease_secret(),
            convergence_secret=self.node.convergence_secret(),
            progress=progress,
        )

    def downloader(self) -> Downloader:
        return Downloader(self.broker)

    def mutable_files(self) -> MutableFiles:
        from veil.services.mutable.files import MutableFiles

        if self.keygen is None:
            return MutableFiles(
                self.broker,
                self.params,
                lease_secret=self.node.lease_secret(),
                recent=self.recent_writes,
            )
        return MutableFiles(
            self.broker,
            self.params,
            lease_secret=self.node.lease_secret(),
            keygen=self.keygen,
            recent=self.recent_writes,
        )

    def directories(self) -> Directories:
        from veil.services.directories import Directories

        return Directories(self.mutable_files(), self.downloader())


async def known_servers(
    node: NodeDirectory, networks: Networks | None = None
) -> dict[str, dict[str, Any]]:
    """Servers heard from every introducer (or their caches), then the static
    ``servers.yaml`` entries, which win when both name the same server."""
    from veil.adapters.node.introducer import fetch_servers

    merged: dict[str, dict[str, Any]] = {}
    introducers = {p: introducer_nurl(node, p, t) for p, t in node.introducers().items()}
    if networks is None:
        need = any(n.scheme == TOR_SCHEME for n in introducers.values())
        networks = await networks_for(node, need_tor=need)
    heard = await asyncio.gather(
        *(
            fetch_servers(nurl, node.private / f"introducer_{p}_cache.json", networks, p)
            for p, nurl in introducers.items()
        )
    )
    for servers in heard:
        merged.update(servers)
    merged.update(node.servers())
    return merged


def _same_directory(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def cached_servers(node: NodeDirectory) -> dict[str, dict[str, Any]]:
    """The servers known without a round trip: the introducers' caches and
    ``servers.yaml``."""
    from veil.adapters.node.introducer import cached_announcements

    merged: dict[str, dict[str, Any]] = {}
    for petname in node.introducers():
        merged.update(
            cached_announcements(node.private / f"introducer_{petname}_cache.json").servers()
        )
    merged.update(node.servers())
    return merged


async def _servers_while_warming(
    node: NodeDirectory, networks: Networks
) -> dict[str, dict[str, Any]]:
    """``known_servers``, while the SAM sessions of the I2P servers already
    known are made: a session takes one tunnel build (20 s on i2pd 2.45), which
    then overlaps the introducer's round trip instead of following it."""
    if not node.introducers():
        return await known_servers(node, networks)
    early = [sid for sid, ann in cached_servers(node).items() if needs_i2p(sid, ann)]
    if not early:
        return await known_servers(node, networks)
    await networks.ensure_i2p()
    warming = asyncio.ensure_future(networks.prepare_i2p(early))
    try:
        servers = await known_servers(node, networks)
    except BaseException:
        warming.cancel()
        raise
    await warming
    return servers


def introducer_nurl(node: NodeDirectory, petname: str, text: str) -> NURL:
    try:
        return parse_nurl(text)
    except VeilError:
        raise ConfigError(
            f"introducer {petname!r} in {node.private / 'introducers.yaml'} is not an HTTPS "
            "introducer NURL (pb://…#v=1); veil cannot use Foolscap introducers"
        ) from None


_warm: ContextVar[Client | None] = ContextVar("veil_warm_client", default=None)


@contextmanager
def warm_client(client: Client) -> Iterator[None]:
    """Within this (one task and what it starts), ``open_client`` of the same
    node directory gives ``client``, open already and left open: a running
    node's command server lends its session to the command it runs."""
    token = _warm.set(client)
    try:
        yield
    finally:
        _warm.reset(token)


@asynccontextmanager
async def open_client(
    path: Path, *, network: NetworkProvider | None = None
) -> AsyncIterator[Client]:
    warm = _warm.get()
    if warm is not None and network is None and _same_directory(warm.node.path, path):
        yield warm
        return
    node = NodeDirectory(path)
    intro_tor = any(
        introducer_nurl(node, p, t).scheme == TOR_SCHEME for p, t in node.introducers().items()
    )
    networks = await networks_for(node, need_tor=intro_tor, tcp=network)
    servers = await _servers_while_warming(node, networks)
    if any(needs_tor(s, a) for s, a in servers.items()):
        await networks.ensure_tor()
    if any(needs_i2p(s, a) for s, a in servers.items()):
        await networks.ensure_i2p()
    static = node.servers()
    clients = []
    for sid, ann in servers.items():
        if foolscap_only(ann):
            log.warning(
                "skipping server %s: it offers only Foolscap (an anonymous-storage-FURL, "
                "no NURL), and veil speaks only Tahoe's HTTP storage protocol",
                sid[:16],
            )
            continue
        try:
            clients.append(storage_client_for(sid, ann, networks))
        except VeilError as exc:
            if sid in static:
                raise  # the user's own servers.yaml: say what is wrong
            log.warning("ignoring server %s: %s", sid[:16], exc)
    await networks.prepare_i2p([c.server_id for c in clients if c.via == "i2p"])
    vias = {c.via for c in clients}
    patience = I2P_PATIENCE if "i2p" in vias else TOR_PATIENCE if "tor" in vias else PATIENCE
    broker = StorageBroker(clients, patience=patience)
    try:
        yield Client(node, broker, node.encoding_parameters(), servers, networks)
    finally:
        await broker.close()
        await networks.close()
