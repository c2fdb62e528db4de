"""The backend side of a relay: tunnels a storage server behind NAT keeps open.

``RelayLink`` keeps ``spares`` idle tunnel connections to one relay
(``veil.formats.relay_protocol``), each registered with the backend's name
and HMAC over the relay's nonce. When the relay pairs a client with one, the
link connects it to the local storage listener, copies bytes both ways
(the TLS stays end to end) and opens a new idle connection at once. A
connection that fails, is refused or goes silent is reopened with
exponential backoff (1 s doubling to 60 s, with jitter), so a relay that
restarts is rejoined without the node restarting.

With ``socks`` (Tor's SOCKS port) every tunnel connection goes through Tor,
so the relay does not learn where the server is; nothing then ever connects
to the relay directly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Coroutine
from typing import Any

from veil.adapters.net.relay import read_frame, splice
from veil.adapters.net.socks import open_tunnel
from veil.errors import FormatError, ServerUnavailable, VeilError
from veil.formats import relay_protocol as rp
from veil.formats import socks5
from veil.formats.tor_settings import Endpoint

log = logging.getLogger(__name__)
SPARES = 3  # idle tunnel connections kept per relay
PING_INTERVAL = 20.0
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 60.0
CONNECT_TIMEOUT = 15.0  # a Tor stream takes longer than a TCP connect
_ENDED = (OSError, ConnectionError, asyncio.IncompleteReadError, TimeoutError, VeilError)


class RelayLink:
    """Tunnels from the storage listener at ``target`` to the relay of ``ticket``."""

    def __init__(
        self,
        ticket: rp.RelayTicket,
        target: tuple[str, int],
        *,
        socks: Endpoint | None = None,
        spares: int = SPARES,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        self.ticket, self.target, self.socks = ticket, target, socks
        self.spares, self.ping_interval = spares, ping_interval
        self.registered = 0  # idle connections the relay has accepted, right now
        self.streams = 0  # client streams relayed so far
        self.last_problem = ""
        self._creds = socks5.Credentials(f"veil-relay:{ticket.name}", secrets.token_hex(16))
        self._tasks: set[asyncio.Task[None]] = set()
        self._up = asyncio.Event()

    @property
    def where(self) -> str:
        return f"relay {self.ticket.tunnel_host}:{self.ticket.tunnel_port}"

    def start(self) -> None:
        for _ in range(self.spares):
            self._spawn(self._keep_one())

    async def wait_registered(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._up.wait()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.ticket.tunnel_host, self.ticket.tunnel_port
        async with asyncio.timeout(CONNECT_TIMEOUT):
            if self.socks is not None:
                sock = await open_tunnel(self.socks, host, port, self._creds)
                return await asyncio.open_connection(sock=sock)
            return await asyncio.open_connection(host, port)

    async def _register(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await self._connect()
        try:
            writer.write(rp.MAGIC)
            async with asyncio.timeout(CONNECT_TIMEOUT):
                kind, nonce = await read_frame(reader)
                if kind != rp.Frame.CHALLENGE or len(nonce) != rp.NONCE_SIZE:
                    raise FormatError(f"the {self.where} does not speak the relay protocol")
                hello = rp.encode_hello(self.ticket.secret, nonce, self.ticket.name)
                writer.write(rp.encode_frame(rp.Frame.HELLO, hello))
                kind, payload = await read_frame(reader)
            if kind == rp.Frame.REFUSE:
                reason = payload.decode("ascii", "replace")[:120]
                raise ServerUnavailable(
                    f"the {self.where} refused backend {self.ticket.name!r}: {reason}"
                )
            if kind != rp.Frame.ACCEPT:
                raise FormatError(f"the {self.where} answered HELLO with {kind.name}")
        except BaseException:
            writer.close()
            raise
        return reader, writer

    async def _wait_for_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Return when the relay pairs a client (STREAM); raise when it is gone."""
        frame: asyncio.Future[tuple[rp.Frame, bytes]] = asyncio.ensure_future(read_frame(reader))
        waiting_pong = False
        try:
            while True:
                done, _ = await asyncio.wait({frame}, timeout=self.ping_interval)
                if not done:
                    if waiting_pong:
                        raise TimeoutError
                    writer.write(rp.encode_frame(rp.Frame.PING))
                    waiting_pong = True
                    continue
                kind, _ = frame.result()
                if kind == rp.Frame.STREAM:
                    writer.write(rp.encode_frame(rp.Frame.GO))
                    return
                if kind != rp.Frame.PONG:
                    raise FormatError(f"unexpected {kind.name} from the {self.where}")
                waiting_pong = False
                frame = asyncio.ensure_future(read_frame(reader))
        finally:
            frame.cancel()

    async def _keep_one(self) -> None:
        delay = FIRST_BACKOFF
        while True:
            try:
                reader, writer = await self._register()
            except _ENDED as exc:
                self._note(exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            delay = FIRST_BACKOFF
            self.registered += 1
            self._up.set()
            try:
                await self._wait_for_stream(reader, writer)
            except BaseException as exc:
                writer.close()
                if not isinstance(exc, _ENDED):
                    raise
                self._note(exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                continue
            finally:
                self.registered -= 1
            self.streams += 1
            self._spawn(self._serve(reader, writer))

    def _note(self, exc: BaseException) -> None:
        problem = str(exc) if isinstance(exc, VeilError) else type(exc).__name__
        if problem != self.last_problem:
            log.warning("tunnel to the %s: %s; reconnecting with backoff", self.where, problem)
        self.last_problem = problem

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            local = await asyncio.open_connection(*self.target)
        except OSError as exc:
            log.warning("the storage listener does not answer: %s", exc.strerror or exc)
            writer.close()
            return
        try:
            await splice((reader, writer), local)
        except _ENDED:
            pass
        finally:
            writer.close()
            local[1].close()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
