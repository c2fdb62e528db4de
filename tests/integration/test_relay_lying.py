"""Relays that lie, on loopback: each is caught by the client, with a clear
error and never a wrong byte.

A relay that drops connections, cuts answers short, flips a byte of the
ciphertext, sends the stream to another backend, or terminates TLS with a
certificate of its own: the SPKI pin (and TLS's own integrity) stops every
one. The relay in the middle is veil's own where it can be (misrouting), and
a small proxy elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from veil.adapters.http.storage_client import HttpStorageClient
from veil.adapters.http.storage_server import RunningServer, start_storage_http
from veil.adapters.http.tls import client_context, create_identity, server_context, spki_hash_of_pem
from veil.adapters.net.relay import RelayBackend, RelayFrontend
from veil.adapters.net.relay_tunnel import RelayLink
from veil.adapters.storage.memory import MemoryBackend
from veil.errors import ServerUnavailable
from veil.formats.nurl import NURL
from veil.formats.relay_protocol import RelayTicket
from veil.services.server_failures import PinMismatch
from veil.services.storage.server import StorageServer

pytestmark = pytest.mark.integration

SWISSNUM = "cpqn4ejbkqla2rwfjr2oekewjnbecauu"
SECRET = bytes(range(32))
SI = b"\x05" * 16
DATA = os.urandom(600_000)
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    http: RunningServer
    spki: str

    def client(self, port: int) -> HttpStorageClient:
        return HttpStorageClient(
            NURL("pb", self.spki, "127.0.0.1", port, SWISSNUM),
            server_id="v0-bob",
            lease_seed=b"\x01" * 20,
            permutation_seed=b"\x02" * 32,
            connect_timeout=3.0,
            request_timeout=10.0,
        )


async def _server(root: Path) -> Server:
    root.mkdir()
    key, cert = root / "tls.key", root / "tls.crt"
    create_identity(key, cert)
    http = await start_storage_http(
        StorageServer(backend=MemoryBackend()),
        SWISSNUM,
        host="127.0.0.1",
        port=0,
        ssl_context=server_context(key, cert),
    )
    return Server(http, spki_hash_of_pem(cert.read_bytes()))


@pytest.fixture
async def bob(tmp_path: Path) -> AsyncIterator[Server]:
    server = await _server(tmp_path / "bob")
    client = server.client(server.http.port)
    await client.allocate_buckets(
        SI,
        frozenset({0}),
        len(DATA),
        renew_secret=b"r" * 32,
        cancel_secret=b"c" * 32,
        upload_secret=b"u" * 32,
    )
    await client.write_share_chunk(SI, 0, 0, DATA[:500_000], upload_secret=b"u" * 32)
    await client.write_share_chunk(SI, 0, 500_000, DATA[500_000:], upload_secret=b"u" * 32)
    await client.close()
    yield server
    await server.http.stop()


async def _proxy(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    return server, port


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    change: Callable[[int, bytes], bytes | None],
) -> None:
    seen = 0
    try:
        while data := await reader.read(65536):
            out = change(seen, data)
            seen += len(data)
            if out is None:
                writer.transport.abort()
                return
            writer.write(out)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def forwarding(target: int, down: Callable[[int, bytes], bytes | None]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(_pipe(reader, up_w, lambda _, d: d), _pipe(up_r, writer, down))

    return handle


async def _read_fails(server: Server, port: int) -> ServerUnavailable:
    client = server.client(port)
    try:
        with pytest.raises(ServerUnavailable) as caught:
            await client.read_share_chunk(SI, 0, 0, len(DATA))
    finally:
        await client.close()
    text = str(caught.value)
    assert "\n" not in text and SWISSNUM not in text and "Traceback" not in text
    return caught.value


async def test_a_relay_that_drops_every_connection(bob: Server) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    proxy, port = await _proxy(drop)
    try:
        error = await _read_fails(bob, port)
        assert "server v0-bob" in str(error)
    finally:
        proxy.close()


async def test_a_relay_that_cuts_the_answer_short(bob: Server) -> None:
    cut = forwarding(bob.http.port, lambda seen, d: d if seen < 200_000 else None)
    proxy, port = await _proxy(cut)
    try:
        error = await _read_fails(bob, port)
        assert "broke the connection mid-request (tried twice)" in str(error)
    finally:
        proxy.close()


async def test_a_read_whose_connection_broke_once_is_sent_again_on_a_new_one(bob: Server) -> None:
    """A stream that failed once (an I2P tunnel or Tor circuit under load, a
    kept-alive connection closed) costs one more connection, not the server."""
    connections: list[int] = []

    async def cut_the_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        first = len(connections) == 1
        await forwarding(bob.http.port, lambda seen, d: None if first and seen > 200_000 else d)(
            reader, writer
        )

    proxy, port = await _proxy(cut_the_first)
    client = bob.client(port)
    try:
        assert await client.read_share_chunk(SI, 0, 0, len(DATA)) == DATA
        assert len(connections) == 2
    finally:
        await client.close()
        proxy.close()


async def test_a_relay_that_flips_a_byte_of_ciphertext(bob: Server) -> None:
    def flip(seen: int, data: bytes) -> bytes:
        if seen <= 100_000 < seen + len(data):
            i = 100_000 - seen
            return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]
        return data

    proxy, port = await _proxy(forwarding(bob.http.port, flip))
    try:
        await _read_fails(bob, port)  # TLS's record MAC fails: no byte is handed on
    finally:
        proxy.close()


async def test_a_relay_that_sends_the_stream_to_another_backend(
    bob: Server, tmp_path: Path
) -> None:
    carol = await _server(tmp_path / "carol")
    relay = RelayFrontend({"bob": RelayBackend("bob", SECRET, port=0)}, "127.0.0.1", 0)
    await relay.start()
    ticket = RelayTicket("bob", SECRET, "127.0.0.1", relay.port, "127.0.0.1", relay.ports["bob"])
    wrong = RelayLink(ticket, ("127.0.0.1", carol.http.port), spares=1)  # carol's server as bob
    wrong.start()
    try:
        await wrong.wait_registered(5)
        error = await _read_fails(bob, relay.ports["bob"])
        assert isinstance(error, PinMismatch)
        assert "certificate" in str(error)
    finally:
        await wrong.stop()
        await relay.stop()
        await carol.http.stop()


async def test_a_relay_that_presents_its_own_certificate(bob: Server, tmp_path: Path) -> None:
    key, cert = tmp_path / "mitm.key", tmp_path / "mitm.crt"
    create_identity(key, cert)
    seen: list[bytes] = []

    async def mitm(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(
                "127.0.0.1", bob.http.port, ssl=client_context()
            )
        except (OSError, ssl.SSLError):
            writer.close()
            return

        def keep(_: int, d: bytes) -> bytes:
            seen.append(d)
            return d

        await asyncio.gather(_pipe(reader, up_w, keep), _pipe(up_r, writer, lambda _, d: d))

    proxy = await asyncio.start_server(mitm, "127.0.0.1", 0, ssl=server_context(key, cert))
    try:
        error = await _read_fails(bob, proxy.sockets[0].getsockname()[1])
        assert isinstance(error, PinMismatch)
        assert not seen  # the pin failed before any byte of the request was sent
    finally:
        proxy.close()


async def _veil(*args: str) -> tuple[int, bytes, str]:
    proc = await asyncio.create_subprocess_exec(
        *VEIL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()


async def test_veil_get_through_a_lying_relay_prints_one_error_and_no_byte(tmp_path: Path) -> None:
    """The whole command: a file put directly, then fetched through a relay that
    flips one byte of what the server sends. ``veil get`` fails with one error
    line (and its hint) and writes nothing to stdout."""
    one = ["--shares-needed", "1", "--shares-happy", "1", "--shares-total", "1"]
    node = tmp_path / "bob"
    assert (await _veil("create-node", *one, str(node)))[0] == 0
    with open(tmp_path / "bob.log", "wb") as log:
        server = subprocess.Popen([*VEIL, "run", str(node)], stdout=log, stderr=log)
    try:
        ann_file = node / "private" / "announcement.yaml"
        for _ in range(600):
            if ann_file.exists() or server.poll() is not None:
                break
            await asyncio.sleep(0.1)
        doc = yaml.safe_load(ann_file.read_text())
        direct = doc["ann"]["anonymous-storage-NURLs"][0]
        port = int(direct.split("@")[1].split("/")[0].rsplit(":", 1)[1])

        def flip(seen: int, data: bytes) -> bytes:
            if seen <= 50_000 < seen + len(data):
                i = 50_000 - seen
                return data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1 :]
            return data

        proxy, proxy_port = await _proxy(forwarding(port, flip))
        clients = {}
        for name, nurl in (
            ("direct", direct),
            ("lied-to", direct.replace(f":{port}/", f":{proxy_port}/")),
        ):
            path = tmp_path / name
            assert (await _veil("create-client", *one, str(path)))[0] == 0
            ann = {**doc["ann"], "anonymous-storage-NURLs": [nurl]}
            servers = {"storage": {doc["server_id"]: {"ann": ann}}}
            (path / "private" / "servers.yaml").write_text(yaml.safe_dump(servers))
            clients[name] = path
        src = tmp_path / "file.bin"
        src.write_bytes(DATA)
        code, out, err = await _veil("-d", str(clients["direct"]), "put", str(src))
        assert code == 0, err
        cap = out.decode().strip()
        code, out, err = await _veil("-d", str(clients["lied-to"]), "get", cap)
        assert code == 1 and out == b""
        lines = err.splitlines()
        assert lines[0].startswith("veil: error:") and len(lines) <= 2, err
        assert cap not in err and "Traceback" not in err
        proxy.close()
    finally:
        server.terminate()
        server.wait(15)
