"""A node's server as an I2P destination: incoming SAM streams served over TLS.

``I2PService.start`` opens a SAM session with the node's own key (kept in
``private/``, so the ``.b32.i2p`` address survives restarts) and hands every
incoming stream to an aiohttp runner's server, which does the TLS *server*
side. Two ways for streams to arrive:

    accept    (default) a few ``STREAM ACCEPT`` sockets wait for streams; this
              node opened those sockets to the router, yet on each stream it
              is the TLS server (``connect_accepted_socket``: server side by
              construction). Needs no listening port: works with a SAM bridge
              in another network namespace or on another machine.
    forward   one ``STREAM FORWARD ... SILENT=true``: the router connects to
              the node's loopback listener for each stream (raw bytes, no
              destination line), as Tor does for onion services.

Tahoe's I2P support once failed because both ends sent a TLS ClientHello: the
server side dialled out to SAM and Twisted derived the TLS role from the
connection's direction (Tahoe trac #2861). Here the role never depends on who
opened the socket to the router.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import Any

from veil.adapters.net.sam_client import SamSession, read_line
from veil.errors import ServerUnavailable
from veil.formats import sam
from veil.formats.tor_settings import Endpoint

log = logging.getLogger(__name__)
PENDING_ACCEPTS = 4  # streams that can arrive at the same moment without waiting
RETRY_DELAY = 2.0


class I2PService:
    """Serves ``server`` (an aiohttp ``web.Server`` or any protocol factory) at
    the destination of ``private_key`` until ``stop``."""

    def __init__(self, session: SamSession, server: Any, ssl_context: ssl.SSLContext | None):
        self.session = session
        self.server = server
        self.ssl_context = ssl_context
        self.accepted = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._forward: socket.socket | None = None
        self._handovers: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return self.session.address

    def __repr__(self) -> str:  # the address identifies an anonymous server: not in logs
        return f"I2PService({self.session.id}, {self.accepted} streams)"

    @classmethod
    async def start(
        cls,
        endpoint: Endpoint,
        private_key: str,
        server: Any,
        *,
        ssl_context: ssl.SSLContext | None,
        forward_port: int | None = None,
        expected_address: str | None = None,
    ) -> I2PService:
        """``ssl_context``: the TLS server context, or None when ``server``
        does TLS itself (veil's guarded storage server). ``forward_port``:
        use STREAM FORWARD to this 127.0.0.1 port instead of accepting."""
        session = await SamSession.create(endpoint, private_key)
        service = cls(session, server, ssl_context)
        if expected_address and session.address != expected_address.lower():
            await session.close()
            from veil.errors import ConfigError

            raise ConfigError(
                "the I2P key in private/ does not match the I2P address in tahoe.cfg",
                hint="the key file was replaced; restore it or create the node again",
            )
        try:
            if forward_port is not None:
                await service._start_forward(forward_port)
            else:
                service._tasks = [
                    asyncio.ensure_future(service._accept_loop()) for _ in range(PENDING_ACCEPTS)
                ]
        except BaseException:
            await service.stop()
            raise
        log.info("I2P destination published (%s)", "forward" if forward_port else "accept")
        return service

    async def _start_forward(self, port: int) -> None:
        sock, reply = await self.session.stream_socket(sam.stream_forward(self.session.id, port))
        try:
            sam.check(reply, "STREAM", "STATUS", "forwarding I2P streams")
        except BaseException:
            sock.close()
            raise
        self._forward = sock  # the forwarding lasts while this socket is open

    async def _accept_loop(self) -> None:
        while self.session.alive:
            try:
                sock, reply = await self.session.stream_socket(sam.stream_accept(self.session.id))
            except (OSError, TimeoutError, ServerUnavailable, sam.SamError) as exc:
                log.warning("I2P: waiting for streams failed (%s); retrying", exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            try:
                sam.check(reply, "STREAM", "STATUS", "accepting I2P streams")
                peer = await read_line(sock)  # the peer's destination: not kept, not logged
                del peer
            except (OSError, sam.SamError) as exc:
                sock.close()
                log.info("I2P: an accept ended without a stream (%s)", exc)
                await asyncio.sleep(RETRY_DELAY if isinstance(exc, sam.SamError) else 0)
                continue
            except BaseException:
                sock.close()
                raise
            self.accepted += 1
            handover = asyncio.ensure_future(self._serve(sock))
            self._handovers.add(handover)
            handover.add_done_callback(self._handovers.discard)

    async def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:  # server side, whoever opened the socket (Tahoe trac #2861)
            await loop.connect_accepted_socket(self.server, sock, ssl=self.ssl_context)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            sock.close()
            log.info("I2P: a stream failed before TLS finished: %s", exc)

    async def stop(self) -> None:
        for task in [*self._tasks, *self._handovers]:
            task.cancel()
        for task in [*self._tasks, *self._handovers]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._forward is not None:
            self._forward.close()
            self._forward = None
        await self.session.close()
