"""The I2P listener does the TLS *server* side on every stream (Tahoe trac #2861).

Tahoe's I2P servers once failed because the server dialled out to SAM for
each incoming stream and then also sent a TLS ClientHello. Here, on the
private I2P network: a client opens a raw SAM stream to a veil
``I2PService`` and (1) hears nothing until it speaks (a TLS server waits for
the ClientHello), (2) gets a ServerHello in answer to its own ClientHello,
(3) completes HTTPS with the server's SPKI pin; for streams that arrive by
``STREAM ACCEPT`` (the node dialled SAM) and by ``STREAM FORWARD`` (SAM
dialled the node, which then runs inside the routers' namespace).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from veil.adapters.http.tls import SpkiPin, create_identity, server_context, spki_hash_of_pem
from veil.adapters.net.i2p import I2PProvider
from veil.adapters.net.i2p_service import I2PService
from veil.adapters.net.sam_client import SamSession, generate_destination
from veil.formats import sam
from veil.formats.tor_settings import Endpoint

from .privnet import I2PNetwork

pytestmark = [pytest.mark.i2p, pytest.mark.integration]
TLS_HANDSHAKE, CLIENT_HELLO, SERVER_HELLO = 0x16, 1, 2


def _app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello over {request.scheme}")

    app = web.Application()
    app.router.add_get("/hello", hello)
    return app


class NamespaceLoop:
    """An event loop in a thread that has entered the routers' network
    namespace: sockets it makes (to SAM, its listeners) live there."""

    def __init__(self, pid: int) -> None:
        self.loop = asyncio.new_event_loop()
        self._entered = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pid,), daemon=True)
        self._thread.start()
        assert self._entered.wait(5)

    def _run(self, pid: int) -> None:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0
        finally:
            os.close(fd)
        self._entered.set()
        self.loop.run_forever()

    async def run(self, make: Callable[[], Awaitable[Any]]) -> Any:
        async def wrapped() -> Any:
            return await make()

        future = asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    d = tmp_path_factory.mktemp("tls")
    create_identity(d / "k", d / "c")
    return server_context(d / "k", d / "c"), spki_hash_of_pem((d / "c").read_bytes())


@pytest.fixture
def namespace(i2p_network: I2PNetwork) -> Iterator[NamespaceLoop]:
    assert i2p_network.holder is not None
    ns = NamespaceLoop(i2p_network.holder.pid)
    yield ns
    ns.close()


async def _raw_stream(client: SamSession, address: str) -> socket.socket:
    # a new destination's LeaseSet reached the client's router after more than 60 s
    # in one CI run, with the rest of the suite loading both cores beside the routers
    sock = await client.connect_stream(address, timeout=150)
    sock.setblocking(False)
    return sock


async def _first_record_type(sock: socket.socket, hostname: str) -> tuple[bytes, int] | None:
    """Send a ClientHello over ``sock``; the server's first record and its
    handshake message type (None: the stream closed before any answer)."""
    loop = asyncio.get_running_loop()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    tls = context.wrap_bio(incoming, outgoing, server_hostname=hostname)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[0] == TLS_HANDSHAKE and hello[5] == CLIENT_HELLO
    await loop.sock_sendall(sock, hello)
    answer = b""
    while len(answer) < 6:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 30)
        if not chunk:
            return None
        answer += chunk
    return answer, answer[5]


async def _check_server_side(
    address: str, spki: str, provider: I2PProvider, client: SamSession
) -> None:
    loop = asyncio.get_running_loop()
    answer = None
    for _ in range(3):  # a stream dropped by a loaded private net (once in CI) is tried again
        silent = await _raw_stream(client, address)
        try:  # a TLS server says nothing first; a wrongly "client" server sends a ClientHello
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(loop.sock_recv(silent, 1), 3)
            answer = await _first_record_type(silent, address)
        finally:
            silent.close()
        if answer is not None:
            break
    assert answer is not None, "the server closed every stream instead of answering"
    first, kind = answer
    assert first[0] == TLS_HANDSHAKE and kind == SERVER_HELLO, first[:8].hex()
    connector = provider.connector(
        host=address, port=3457, tls=SpkiPin(spki), isolation_key="peer-1"
    )
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"https://{address}:3457/hello") as response,
    ):
        assert response.status == 200
        assert await response.text() == "hello over https"


async def test_streams_get_the_tls_server_side_however_they_arrive(
    i2p_network: I2PNetwork, identity: tuple[ssl.SSLContext, str], namespace: NamespaceLoop
) -> None:
    """Accepted (the node dialled SAM) and forwarded (SAM dialled the node)
    streams, and two peers of one provider with two destinations; all
    sessions are made at once (i2pd 2.45 takes 20 s for each)."""
    context, spki = identity
    server_router, client_router = i2p_network.client_routers[:2]
    server_sam = Endpoint("127.0.0.1", i2p_network.sam_port(server_router))
    inside_sam = Endpoint("127.0.0.1", i2p_network.routers[server_router].sam)
    client_sam = Endpoint("127.0.0.1", i2p_network.sam_port(client_router))
    accept_runner = web.AppRunner(_app())
    await accept_runner.setup()
    inside: dict[str, Any] = {}

    async def start_accepting() -> I2PService:
        key = await generate_destination(server_sam)
        service = await I2PService.start(server_sam, key, accept_runner.server, ssl_context=context)
        assert service.address == sam.b32_address(sam.destination_of_private_key(key))
        return service

    async def start_forwarding() -> str:  # in the routers' namespace, beside its router
        runner = web.AppRunner(_app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        key = await generate_destination(inside_sam)
        service = await I2PService.start(
            inside_sam, key, runner.server, ssl_context=None, forward_port=runner.addresses[0][1]
        )
        inside.update(runner=runner, service=service)
        return service.address

    async def stop_forwarding() -> None:
        await inside["service"].stop()
        await inside["runner"].cleanup()

    provider = I2PProvider(client_sam)
    started: tuple[Any, ...] = await asyncio.gather(
        start_accepting(),
        namespace.run(start_forwarding),
        SamSession.create(client_sam),
        provider.session("peer-1"),
        provider.session("peer-2"),
        return_exceptions=True,
    )
    accepting, forwarded, raw_client, peer_one, peer_two = started
    try:
        for result in started:
            if isinstance(result, BaseException):
                raise result
        assert isinstance(accepting, I2PService) and isinstance(raw_client, SamSession)
        assert isinstance(forwarded, str)
        assert peer_one.destination != peer_two.destination
        assert await provider.session("peer-1") is peer_one
        await _check_server_side(accepting.address, spki, provider, raw_client)
        assert accepting.accepted >= 2
        await _check_server_side(forwarded, spki, provider, raw_client)
    finally:
        if isinstance(raw_client, SamSession):
            await raw_client.close()
        await provider.close()
        if isinstance(accepting, I2PService):
            await accepting.stop()
        if "service" in inside:
            await namespace.run(stop_forwarding)
        await accept_runner.cleanup()


def test_sam_not_running_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    provider = I2PProvider(Endpoint("127.0.0.1", port))

    async def attempt() -> str:
        try:
            await provider.open_stream("k", "a" * 52 + ".b32.i2p")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return "connected"

    said = asyncio.run(attempt())
    assert said.startswith("ServerUnavailable: the I2P router's SAM bridge at 127.0.0.1:")
    assert "does not answer" in said
