"""veil's relay on loopback: a storage server reached only through tunnels it
opened itself, by a per-backend port and by SNI; a wrong secret is refused; a
relay that goes away leaves the client on the next announced address.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from veil.adapters.http.storage_client import HttpStorageClient
from veil.adapters.http.storage_server import RunningServer, start_storage_http
from veil.adapters.http.tls import create_identity, server_context, spki_hash_of_pem
from veil.adapters.net.relay import MAX_IDLE, RelayBackend, RelayFrontend
from veil.adapters.net.relay_tunnel import RelayLink
from veil.adapters.net.tcp import TcpProvider
from veil.adapters.storage.memory import MemoryBackend
from veil.formats import relay_protocol as rp
from veil.formats.nurl import NURL
from veil.formats.relay_protocol import RelayTicket
from veil.services.storage.server import StorageServer

pytestmark = pytest.mark.integration

SWISSNUM = "cpqn4ejbkqla2rwfjr2oekewjnbecauu"
SECRET = bytes(range(32))
SI = b"\x07" * 16


@dataclass
class Setup:
    http: RunningServer
    spki: str
    relays: list[RelayFrontend]
    links: list[RelayLink]

    def nurl(self, host: str, port: int) -> NURL:
        return NURL("pb", self.spki, host, port, SWISSNUM)

    def client(self, *nurls: NURL) -> HttpStorageClient:
        tcp = TcpProvider()
        return HttpStorageClient(
            nurls[0],
            server_id="v0-relayed",
            lease_seed=b"\x01" * 20,
            permutation_seed=b"\x02" * 32,
            network=tcp,
            connect_timeout=3.0,
            alternatives=[(n, tcp) for n in nurls[1:]],
        )


async def _relay(name: str) -> RelayFrontend:
    backend = RelayBackend(name, SECRET, port=0, sni_names=("localhost",))
    relay = RelayFrontend({name: backend}, "127.0.0.1", 0, claim_timeout=3.0)
    await relay.start()
    return relay


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    create_identity(key, cert)
    core = StorageServer(backend=MemoryBackend())
    http = await start_storage_http(
        core, SWISSNUM, host="127.0.0.1", port=0, ssl_context=server_context(key, cert)
    )
    relays = [await _relay("bob"), await _relay("bob")]
    links = []
    for relay in relays:
        ticket = RelayTicket(
            "bob", SECRET, "127.0.0.1", relay.port, "127.0.0.1", relay.ports["bob"]
        )
        link = RelayLink(ticket, ("127.0.0.1", http.port), spares=2)
        link.start()
        await link.wait_registered(5.0)
        links.append(link)
    yield Setup(http, spki_hash_of_pem(cert.read_bytes()), relays, links)
    for link in links:
        await link.stop()
    for relay in relays:
        await relay.stop()
    await http.stop()


async def _roundtrip(client: HttpStorageClient, data: bytes, shnum: int) -> bytes:
    await client.allocate_buckets(
        SI,
        frozenset({shnum}),
        len(data),
        renew_secret=b"r" * 32,
        cancel_secret=b"c" * 32,
        upload_secret=b"u" * 32,
    )
    await client.write_share_chunk(SI, shnum, 0, data, upload_secret=b"u" * 32)
    return await client.read_share_chunk(SI, shnum, 0, len(data))


async def test_per_port_and_sni_reach_the_server_through_its_own_tunnels(setup: Setup) -> None:
    relay = setup.relays[0]
    data = os.urandom(900_000)
    by_port = setup.client(setup.nurl("127.0.0.1", relay.ports["bob"]))
    by_sni = setup.client(setup.nurl("localhost", relay.port))  # SNI "localhost"
    try:
        assert await _roundtrip(by_port, data, 0) == data
        assert await _roundtrip(by_sni, data[::-1], 1) == data[::-1]
    finally:
        await by_port.close()
        await by_sni.close()
    assert setup.links[0].streams >= 2
    await asyncio.sleep(0.2)
    assert relay.idle_tunnels("bob") == 2  # every claimed tunnel was replaced


async def test_a_wrong_secret_is_refused_and_takes_no_name(setup: Setup) -> None:
    relay = setup.relays[0]
    thief = RelayTicket("bob", b"\x09" * 32, "127.0.0.1", relay.port, "127.0.0.1", 1)
    link = RelayLink(thief, ("127.0.0.1", 9), spares=1)
    link.start()
    try:
        for _ in range(50):
            if link.last_problem:
                break
            await asyncio.sleep(0.05)
        assert "refused backend 'bob'" in link.last_problem
        assert link.registered == 0
    finally:
        await link.stop()
    assert relay.idle_tunnels("bob") == 2


async def test_a_stopped_relay_leaves_the_client_on_the_next_one(setup: Setup) -> None:
    first, second = setup.relays
    nurls = [setup.nurl("127.0.0.1", r.ports["bob"]) for r in (first, second)]
    client = setup.client(*nurls)
    try:
        data = os.urandom(700_000)
        assert await _roundtrip(client, data, 2) == data
        await first.stop()
        await client.close()  # drop the pooled connection to the first relay
        client = setup.client(*nurls)
        assert await client.read_share_chunk(SI, 2, 0, len(data)) == data
        assert client.nurl == nurls[1]
    finally:
        await client.close()


class CuttingRelay:
    """A relay that dies mid-transfer: it forwards to ``target`` and cuts both
    connections once ``limit`` bytes have come back from the server."""

    def __init__(self, target: int, limit: int) -> None:
        self.target, self.limit, self.cuts = target, limit, 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)

        async def up() -> None:
            while data := await reader.read(65536):
                up_w.write(data)

        async def down() -> None:
            sent = 0
            while data := await up_r.read(65536):
                if sent + len(data) > self.limit:
                    writer.write(data[: self.limit - sent])
                    await writer.drain()
                    self.cuts += 1
                    writer.transport.abort()
                    return
                writer.write(data)
                sent += len(data)

        pump = asyncio.ensure_future(up())
        try:
            await down()
        except ConnectionError:
            pass
        finally:
            pump.cancel()
            up_w.close()
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_relay_dying_mid_read_leaves_the_read_to_the_next_one(setup: Setup) -> None:
    data = os.urandom(900_000)
    direct = setup.client(setup.nurl("127.0.0.1", setup.relays[1].ports["bob"]))
    try:
        await _roundtrip(direct, data, 3)
    finally:
        await direct.close()
    cutter = CuttingRelay(setup.relays[0].ports["bob"], limit=300_000)
    nurls = [setup.nurl("127.0.0.1", await cutter.start())]
    nurls.append(setup.nurl("127.0.0.1", setup.relays[1].ports["bob"]))
    client = setup.client(*nurls)
    try:
        assert await client.read_share_chunk(SI, 3, 0, len(data)) == data
        assert cutter.cuts == 2  # the first relay died mid-answer, and again on the retry
        assert client.nurl == nurls[1]
    finally:
        await client.close()
        await cutter.stop()


async def test_a_client_waits_for_a_tunnel_only_so_long() -> None:
    relay = await _relay("carol")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["carol"])
        writer.write(b"\x16\x03\x01\x00\x05hello")
        async with asyncio.timeout(6):
            assert await reader.read() == b""  # closed after the claim timeout
        writer.close()
    finally:
        await relay.stop()


async def test_a_backend_keeps_only_so_many_idle_tunnels() -> None:
    relay = await _relay("dave")
    ticket = RelayTicket("dave", SECRET, "127.0.0.1", relay.port, "127.0.0.1", 1)
    link = RelayLink(ticket, ("127.0.0.1", 9), spares=MAX_IDLE + 2)
    link.start()
    try:
        for _ in range(100):
            if link.last_problem and relay.idle_tunnels("dave") == MAX_IDLE:
                break
            await asyncio.sleep(0.05)
        assert relay.idle_tunnels("dave") == MAX_IDLE
        assert "too many idle tunnels" in link.last_problem
    finally:
        await link.stop()
        await relay.stop()


async def test_a_client_paired_with_a_dead_tunnel_gets_the_next_one(setup: Setup) -> None:
    """A tunnel that registered and then went silent (a NAT that forgot it) is
    given up after ``go_timeout``; the client is paired with a live one."""
    name = "bob"
    relay = RelayFrontend(
        {name: RelayBackend(name, SECRET, port=0)}, "127.0.0.1", 0, go_timeout=0.5
    )
    await relay.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    writer.write(rp.MAGIC)
    header = await reader.readexactly(rp.HEADER_SIZE)
    nonce = await reader.readexactly(rp.parse_header(header)[1])
    writer.write(rp.encode_frame(rp.Frame.HELLO, rp.encode_hello(SECRET, nonce, name)))
    assert (await reader.readexactly(rp.HEADER_SIZE))[0] == rp.Frame.ACCEPT
    assert relay.idle_tunnels(name) == 1  # the silent one is first in line
    ticket = RelayTicket(name, SECRET, "127.0.0.1", relay.port, "127.0.0.1", relay.ports[name])
    link = RelayLink(ticket, ("127.0.0.1", setup.http.port), spares=1)
    link.start()
    client = setup.client(setup.nurl("127.0.0.1", relay.ports[name]))
    try:
        await link.wait_registered(5)
        version = await client.get_version()
        assert version.maximum_immutable_share_size > 0
        assert (await reader.readexactly(rp.HEADER_SIZE))[0] == rp.Frame.STREAM  # it was tried
    finally:
        writer.close()
        await client.close()
        await link.stop()
        await relay.stop()
