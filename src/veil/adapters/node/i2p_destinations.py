"""A running node's servers as I2P destinations (``[i2p] dest = true``).

The storage server and the introducer each get their own destination, with
their own key in ``private/`` (``[i2p] dest.private_key_file`` and
``private/i2p_introducer_dest.privkey``), made through the router's SAM
bridge the first time (``veil create-node --listen=i2p`` makes the storage
one, so its address is in ``tub.location`` before the first run) and kept,
so the ``.b32.i2p`` address survives restarts. A key that no longer matches
the address recorded in ``tub.location`` stops start-up. Streams arrive by
``STREAM ACCEPT`` and are served by the same runner as the loopback listener
(``veil.adapters.net.i2p_service``).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from veil.adapters.http.storage_server import RunningServer
from veil.adapters.net.i2p_service import I2PService
from veil.adapters.net.sam_client import generate_destination, require_ed25519_key
from veil.adapters.node.files import present, read_text, write_private
from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError
from veil.formats import sam
from veil.formats.i2p_settings import INTRODUCER_KEY_FILE, i2p_hints, i2p_settings
from veil.formats.tor_settings import Endpoint, parse_endpoint


def sam_endpoint(node: NodeDirectory) -> Endpoint:
    return parse_endpoint(i2p_settings({"i2p": node.section("i2p")}).sam_port)


async def destination_key(node: NodeDirectory, relative: str, endpoint: Endpoint) -> str:
    """The private key in ``relative`` (under the node), made by SAM if absent."""
    path = node.path / relative
    if present(path):
        return require_ed25519_key(read_text(path), str(path))
    key = await generate_destination(endpoint)
    write_private(path, key + "\n")
    return key


def prewarm_introducer_sessions(node: NodeDirectory, provider: object) -> None:
    """Start the SAM sessions for announcing to I2P introducers now, while the
    node's own destinations are being made (each takes tunnels' time)."""
    session = getattr(provider, "session", None)
    if session is None:
        return
    for petname, text in node.introducers().items():
        if text.startswith("pb+i2p:"):
            task = asyncio.ensure_future(session(petname))
            _warming.add(task)
            task.add_done_callback(_settled)


_warming: set[asyncio.Task[Any]] = set()


def _settled(task: asyncio.Task[Any]) -> None:
    _warming.discard(task)
    if not task.cancelled():
        task.exception()  # reported again, in words, when the announcement is sent


def address_of(key: str) -> str:
    return sam.b32_address(sam.destination_of_private_key(key))


@dataclass
class I2PDestinations:
    """The node's I2P services: {"storage"|"introducer": I2PService}."""

    port: int
    services: dict[str, I2PService] = field(default_factory=dict)

    def address(self, name: str) -> tuple[str, int] | None:
        service = self.services.get(name)
        return None if service is None else (service.address, self.port)

    async def stop(self) -> None:
        for service in self.services.values():
            await service.stop()
        self.services = {}


async def start_i2p_destinations(
    node: NodeDirectory,
    storage: RunningServer | None,
    introducer: RunningServer | None,
    context: ssl.SSLContext,
) -> I2PDestinations:
    """Publish ``storage`` (a guarded runner: it does its own TLS) and
    ``introducer`` (TLS by ``context``) as destinations, both at once."""
    settings = i2p_settings({"i2p": node.section("i2p")})
    endpoint = sam_endpoint(node)
    recorded = [host for host, _ in i2p_hints(node.get("node", "tub.location", ""))]
    wanted: list[tuple[str, str, Any, ssl.SSLContext | None]] = []
    if storage is not None:
        wanted.append(("storage", settings.key_file, storage.runner.server, None))
    if introducer is not None:  # its own destination when the node also runs storage
        key_file = INTRODUCER_KEY_FILE if storage is not None else settings.key_file
        wanted.append(("introducer", key_file, introducer.runner.server, context))
    keys = [await destination_key(node, key_file, endpoint) for _, key_file, _, _ in wanted]
    if keys and recorded and address_of(keys[0]) not in recorded:
        raise ConfigError(
            "the I2P key in private/ does not match the I2P address in tahoe.cfg",
            hint="the key file was replaced; restore it or create the node again",
        )
    started = await asyncio.gather(
        *(
            I2PService.start(endpoint, key, server, ssl_context=tls)
            for key, (_, _, server, tls) in zip(keys, wanted, strict=True)
        ),
        return_exceptions=True,
    )
    result = I2PDestinations(settings.dest_port)
    failure: BaseException | None = None
    for (name, _, _, _), service in zip(wanted, started, strict=True):
        if isinstance(service, BaseException):
            failure = failure or service
        else:
            result.services[name] = service
    if failure is not None:
        await result.stop()
        raise failure
    return result
