"""A relay (frontend): storage servers behind NAT reached through a public port.

``RelayFrontend`` listens on one shared public port and on one port per
backend that asks for one. On the shared port the first bytes say what
connects: ``MAGIC`` is a backend opening a tunnel connection
(``veil.formats.relay_protocol``); a TLS record is a client, routed by the SNI
name of its ClientHello, which is read but never answered here. A backend's
own port takes any client without looking at its bytes: Tahoe 1.20 clients
send no SNI. A client is paired with one of the backend's idle tunnel
connections (waiting up to ``claim_timeout`` for one; one that does not
answer the pairing within ``go_timeout`` is dropped for the next) and from
then on bytes are copied both ways unchanged: the TLS session is between the client and
the storage server, pinned by its SPKI hash, so the relay sees only
ciphertext and cannot pose as the server.

The backend side (keeping tunnels open) is ``veil.adapters.net.relay_tunnel``;
``splice`` and ``read_frame`` here are shared by both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from veil.errors import ConfigError, FormatError
from veil.formats import relay_protocol as rp

log = logging.getLogger(__name__)
CHUNK = 256 * 1024
HANDSHAKE_TIMEOUT = 10.0  # seconds for a tunnel HELLO or a client's ClientHello
CLAIM_TIMEOUT = 10.0  # seconds a client waits for an idle tunnel connection
IDLE_TIMEOUT = 90.0  # a tunnel connection silent this long (no PING) is dropped
MAX_IDLE = 32  # idle tunnel connections kept per backend; more are refused


async def read_frame(reader: asyncio.StreamReader) -> tuple[rp.Frame, bytes]:
    kind, length = rp.parse_header(await reader.readexactly(rp.HEADER_SIZE))
    return kind, await reader.readexactly(length)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    copied = 0
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
        copied += len(data)
    if writer.can_write_eof():
        writer.write_eof()
    return copied


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Copy bytes both ways until both sides are done; an error on either side
    (a reset, a dead peer) closes both, so the other end sees the break."""
    pumps = [asyncio.ensure_future(_pump(a[0], b[1])), asyncio.ensure_future(_pump(b[0], a[1]))]
    try:
        done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                for other in pending:
                    other.cancel()
                break
        else:
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        for task in pumps:
            task.cancel()
        for _, writer in (a, b):
            writer.close()
        for _, writer in (a, b):
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()


@dataclass(frozen=True)
class RelayBackend:
    """One backend the relay operator admitted: its secret, own port, SNI names."""

    name: str
    secret: bytes
    port: int | None = None
    sni_names: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"RelayBackend({self.name})"


@dataclass
class _Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    first_bytes: bytes
    done: asyncio.Future[bool] = field(  # True: the tunnel died before GO; try another
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class _Spare:
    claimed: asyncio.Future[_Client] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RelayFrontend:
    def __init__(
        self,
        backends: Mapping[str, RelayBackend],
        host: str,
        port: int,
        *,
        claim_timeout: float = CLAIM_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        go_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.backends = dict(backends)
        self.by_sni = {n: b.name for b in backends.values() for n in b.sni_names}
        self.host, self.port = host, port
        self.claim_timeout, self.idle_timeout = claim_timeout, idle_timeout
        self.go_timeout = go_timeout  # a claimed tunnel that does not say GO is given up
        self.ports: dict[str, int] = {}  # backend name -> its own port, once listening
        self._spares: dict[str, list[_Spare]] = {name: [] for name in backends}
        self._ready = {name: asyncio.Condition() for name in backends}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    def idle_tunnels(self, name: str) -> int:
        return len(self._spares[name])

    async def start(self) -> None:
        self._servers.append(await self._serve(self._on_shared, self.port, "relay"))
        self.port = self._servers[0].sockets[0].getsockname()[1]
        for backend in self.backends.values():
            if backend.port is not None:

                async def on_own(
                    r: asyncio.StreamReader, w: asyncio.StreamWriter, n: str = backend.name
                ) -> None:
                    await self._track(self._client(n, r, w, b""), w)

                server = await self._serve(on_own, backend.port, f"backend {backend.name}")
                self._servers.append(server)
                self.ports[backend.name] = server.sockets[0].getsockname()[1]

    async def _serve(self, handler: object, port: int, what: str) -> asyncio.Server:
        try:
            return await asyncio.start_server(handler, self.host, port, reuse_address=True)  # type: ignore[arg-type]
        except OSError as exc:
            raise ConfigError(
                f"the relay cannot listen on {self.host}:{port} for {what}: {exc.strerror or exc}",
                hint="choose another port, or stop what uses it",
            ) from None

    async def _track(self, coro: Coroutine[Any, Any, None], writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await coro
        except (
            OSError,
            ConnectionError,
            asyncio.IncompleteReadError,
            TimeoutError,
            FormatError,
        ) as exc:
            log.debug("relay connection ended: %s", type(exc).__name__)
        except asyncio.CancelledError:  # stop(): asyncio's stream callback must not see it
            if not self._stopping:
                raise
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _on_shared(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._track(self._shared(reader, writer), writer)

    async def _shared(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = target = None
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            first = await reader.readexactly(1)
            if first == rp.MAGIC[:1]:
                if first + await reader.readexactly(len(rp.MAGIC) - 1) != rp.MAGIC:
                    raise FormatError("not a relay tunnel")
                name = await self._register(reader, writer)
            else:
                data = first
                while not (sni := rp.sni_of_client_hello(data)).complete:
                    more = await reader.read(CHUNK)
                    if not more:
                        raise FormatError("client left before its ClientHello")
                    data += more
                target = self.by_sni.get(sni.name or "")
                if target is None:
                    log.info("no backend for the SNI name a client asked for; closed")
                    return
        if name is not None:
            await self._idle(name, reader, writer)
        elif target is not None:
            await self._client(target, reader, writer, data)

    async def _register(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        nonce = os.urandom(rp.NONCE_SIZE)
        writer.write(rp.encode_frame(rp.Frame.CHALLENGE, nonce))
        kind, payload = await read_frame(reader)
        if kind != rp.Frame.HELLO:
            raise FormatError("a tunnel must say HELLO first")
        name, mac = rp.parse_hello(payload)
        backend = self.backends.get(name)
        if backend is None or not rp.hello_is_valid(backend.secret, nonce, name, mac):
            log.warning("a tunnel for %r was refused: unknown name or wrong secret", name)
            writer.write(rp.encode_frame(rp.Frame.REFUSE, b"unknown backend name or wrong secret"))
            await writer.drain()
            raise FormatError("refused")
        if len(self._spares[name]) >= MAX_IDLE:
            writer.write(rp.encode_frame(rp.Frame.REFUSE, b"too many idle tunnels"))
            await writer.drain()
            raise FormatError("too many idle tunnels")
        writer.write(rp.encode_frame(rp.Frame.ACCEPT))
        return name

    async def _idle(
        self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Keep one idle tunnel connection until a client claims it, then splice."""
        spare = _Spare()
        async with self._ready[name]:
            if not self._spares[name]:
                log.info("backend %s has an idle tunnel", name)
            self._spares[name].append(spare)
            self._ready[name].notify()
        frame: asyncio.Future[tuple[rp.Frame, bytes]] = asyncio.ensure_future(read_frame(reader))
        try:
            while True:
                done, _ = await asyncio.wait(
                    {frame, spare.claimed},  # type: ignore[type-var]
                    timeout=self.idle_timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if spare.claimed in done:
                    break
                if frame not in done:
                    raise TimeoutError
                kind, _ = frame.result()
                if kind != rp.Frame.PING:
                    raise FormatError(f"unexpected {kind.name} on an idle tunnel")
                writer.write(rp.encode_frame(rp.Frame.PONG))
                frame = asyncio.ensure_future(read_frame(reader))
        finally:
            if spare in self._spares[name]:
                self._spares[name].remove(spare)
            if not spare.claimed.done():
                spare.claimed.cancel()
                frame.cancel()
                writer.close()
        client = spare.claimed.result()
        try:
            writer.write(rp.encode_frame(rp.Frame.STREAM))
            async with asyncio.timeout(self.go_timeout):
                while (await frame)[0] != rp.Frame.GO:  # PINGs sent before STREAM arrived
                    frame = asyncio.ensure_future(read_frame(reader))
        except BaseException:
            frame.cancel()
            client.done.set_result(True)  # nothing of the client's was sent: another tunnel
            raise
        try:
            writer.write(client.first_bytes)
            await splice((client.reader, client.writer), (reader, writer))
        finally:
            writer.close()
            client.writer.close()
            if not client.done.done():
                client.done.set_result(False)

    async def _client(
        self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes
    ) -> None:
        ready = self._ready[name]
        deadline = asyncio.get_running_loop().time() + self.claim_timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline), ready:
                    await ready.wait_for(lambda: bool(self._spares[name]))
                    spare = self._spares[name].pop(0)
            except TimeoutError:
                log.info("backend %s has no tunnel open; a client was turned away", name)
                writer.close()
                return
            client = _Client(reader, writer, first)
            spare.claimed.set_result(client)
            if not await client.done:
                return

    async def stop(self) -> None:
        self._stopping = True
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
