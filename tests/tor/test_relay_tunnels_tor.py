"""A storage server's tunnels to a relay through Tor (``[storage] relays.tor``):
every tunnel connection the relay receives comes from a Tor exit, never from
the server, and clients still reach the server through the relay."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veil.adapters.http.storage_client import HttpStorageClient
from veil.adapters.http.storage_server import start_storage_http
from veil.adapters.http.tls import create_identity, server_context, spki_hash_of_pem
from veil.adapters.net.relay import RelayBackend, RelayFrontend
from veil.adapters.net.relay_tunnel import RelayLink
from veil.adapters.storage.memory import MemoryBackend
from veil.formats.nurl import NURL
from veil.formats.relay_protocol import RelayTicket
from veil.formats.tor_settings import Endpoint
from veil.services.storage.server import StorageServer

from .owners import OwnerWatcher
from .privnet import TorNetwork

pytestmark = pytest.mark.tor
SWISSNUM = "cpqn4ejbkqla2rwfjr2oekewjnbecauu"
SECRET = os.urandom(32)


async def test_tunnels_to_a_relay_leave_through_tor_exits(
    tor_network: TorNetwork, tmp_path: Path
) -> None:
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    create_identity(key, cert)
    http = await start_storage_http(
        StorageServer(backend=MemoryBackend()),
        SWISSNUM,
        host="127.0.0.1",
        port=0,
        ssl_context=server_context(key, cert),
    )
    relay = RelayFrontend({"bob": RelayBackend("bob", SECRET, port=0)}, "127.0.0.1", 0)
    await relay.start()
    ticket = RelayTicket("bob", SECRET, "127.0.0.1", relay.port, "127.0.0.1", relay.ports["bob"])
    socks = Endpoint("127.0.0.1", tor_network.clients[0].socks_port)
    link = RelayLink(ticket, ("127.0.0.1", http.port), socks=socks, spares=2)
    client = HttpStorageClient(
        NURL("pb", spki_hash_of_pem(cert.read_bytes()), "127.0.0.1", relay.ports["bob"], SWISSNUM),
        server_id="v0-bob",
        lease_seed=b"\x01" * 20,
        permutation_seed=b"\x02" * 32,
    )
    try:
        link.start()
        await link.wait_registered(90)
        watcher = OwnerWatcher({relay.port}, {**tor_network.exit_pids(), os.getpid(): "server"})
        watcher.sample()  # the idle tunnels are open now: who holds their far end?
        assert watcher.owner_of, "no tunnel connection to the relay was seen"
        assert all(name.startswith("exit") for name in watcher.owner_of.values()), watcher.owner_of
        version = await client.get_version()
        assert version.maximum_immutable_share_size > 0
        assert link.streams >= 1
    finally:
        await client.close()
        await link.stop()
        await relay.stop()
        await http.stop()
