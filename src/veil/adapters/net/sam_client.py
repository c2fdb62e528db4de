"""Sockets to an I2P router's SAM bridge: sessions, streams and key generation.

The bytes come from ``veil.formats.sam``; this module only moves them. Every
SAM socket is a plain local TCP connection to the router (nothing leaves the
machine but through the router). A ``SamSession`` is one I2P destination
with its own tunnels; it lives as long as its control socket, which is
watched so a router that dies is noticed at once. ``connect_stream`` gives a
socket that is, after SAM's one-line answer, a byte stream to the peer:
TLS runs over it exactly as over TCP. Reads before the stream starts are
one byte at a time, so not a byte of the peer's data is taken from the socket.

Not here: which servers go over I2P (``connection_policy``), aiohttp
(``veil.adapters.net.i2p``), listeners (``veil.adapters.net.i2p_service``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Mapping

from veil.adapters.net.socks import connect_endpoint
from veil.errors import ConfigError, ServerUnavailable
from veil.formats import sam
from veil.formats.tor_settings import Endpoint

log = logging.getLogger(__name__)
LINE_LIMIT = 4096  # a SAM answer line: a destination is ~520 characters, a private key ~880
SESSION_TIMEOUT = 150.0  # i2pd 2.45 answers SESSION CREATE after 20 s (or 40 s)
COMMAND_TIMEOUT = 30.0
# inbound.quantity > 2: with 2, i2pd before 2.48 may not publish a destination's first
# LeaseSet for minutes (its inbound tunnels ready before its outbound ones); a later
# inbound tunnel republishes it
SESSION_OPTIONS = {"inbound.quantity": "4", "outbound.quantity": "2"}


def sam_unavailable(endpoint: Endpoint, exc: BaseException) -> ServerUnavailable:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return ServerUnavailable(
        f"the I2P router's SAM bridge at {endpoint} does not answer ({reason})",
        hint="start the I2P router (i2pd or Java I2P) with SAM enabled, or set [i2p] sam.port; "
        "veil never falls back to a direct connection",
    )


async def read_line(sock: socket.socket) -> bytes:
    """One ``\\n``-terminated line, read byte by byte (nothing after it is consumed)."""
    loop = asyncio.get_running_loop()
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = await loop.sock_recv(sock, 1)
        if not byte:
            raise ConnectionResetError("the SAM bridge closed the connection")
        line += byte
        if len(line) > LINE_LIMIT:
            raise sam.SamError("the SAM bridge sent a line longer than 4 KiB")
    return bytes(line)


async def open_socket(endpoint: Endpoint) -> socket.socket:
    """A SAM socket after a successful HELLO."""
    loop = asyncio.get_running_loop()
    try:
        sock = await connect_endpoint(endpoint)
    except (OSError, ValueError) as exc:
        raise sam_unavailable(endpoint, exc) from None
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            await loop.sock_sendall(sock, sam.HELLO)
            sam.check(sam.parse_reply(await read_line(sock)), "HELLO", "REPLY", "SAM hello")
    except (OSError, TimeoutError) as exc:
        sock.close()
        raise sam_unavailable(endpoint, exc) from None
    except BaseException:
        sock.close()
        raise
    return sock


async def command(sock: socket.socket, line: bytes, timeout: float = COMMAND_TIMEOUT) -> sam.Reply:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        await loop.sock_sendall(sock, line)
        while True:
            raw = await read_line(sock)
            if raw.startswith(b"PING"):  # SAM 3.2 keep-alive
                await loop.sock_sendall(sock, b"PONG" + raw[4:])
                continue
            return sam.parse_reply(raw)


async def generate_destination(endpoint: Endpoint) -> str:
    """A new Ed25519 private key blob (I2P base64), made by the router."""
    sock = await open_socket(endpoint)
    try:
        reply = await command(sock, sam.dest_generate())
    except (OSError, TimeoutError) as exc:
        raise sam_unavailable(endpoint, exc) from None
    finally:
        sock.close()
    if (reply.topic, reply.kind) != ("DEST", "REPLY") or "PRIV" not in reply.values:
        raise sam.SamError("DEST GENERATE: the SAM bridge gave no private key")
    sam.destination_of_private_key(reply.values["PRIV"])
    return reply.values["PRIV"]


class SamSession:
    """One I2P destination (TRANSIENT or from a private key) and its tunnels."""

    def __init__(self, endpoint: Endpoint, sid: str, control: socket.socket, private_key: str):
        self.endpoint = endpoint
        self.id = sid
        self.private_key = private_key
        self.destination = sam.destination_of_private_key(private_key)
        self.address = sam.b32_address(self.destination)
        self._control = control
        self._watch = asyncio.ensure_future(self._watch_control())

    def __repr__(self) -> str:  # the private key is a secret; the address is not printed
        return f"SamSession({self.id})"

    @classmethod
    async def create(
        cls,
        endpoint: Endpoint,
        private_key: str = "TRANSIENT",
        *,
        options: Mapping[str, str] | None = None,
        timeout: float = SESSION_TIMEOUT,
    ) -> SamSession:
        sid = "veil-" + secrets.token_hex(8)
        sock = await open_socket(endpoint)
        try:
            line = sam.session_create(
                sid, private_key, options={**SESSION_OPTIONS, **(options or {})}
            )
            reply = await command(sock, line, timeout)
            sam.check(reply, "SESSION", "STATUS", "creating an I2P destination")
        except TimeoutError:
            sock.close()
            raise ServerUnavailable(
                f"the I2P router did not build tunnels for a new destination within {timeout:.0f} s"
            ) from None
        except OSError as exc:
            sock.close()
            raise sam_unavailable(endpoint, exc) from None
        except BaseException:
            sock.close()
            raise
        key = reply.values.get("DESTINATION", "") if private_key == "TRANSIENT" else private_key
        try:
            return cls(endpoint, sid, sock, key)
        except sam.SamError:
            sock.close()
            raise

    @property
    def alive(self) -> bool:
        return not self._watch.done()

    async def _watch_control(self) -> None:
        """Answer PINGs; return when the router closes the session's socket."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError, sam.SamError):
            while True:
                raw = await read_line(self._control)
                if raw.startswith(b"PING"):
                    await loop.sock_sendall(self._control, b"PONG" + raw[4:])
        log.info("the I2P router closed SAM session %s", self.id)

    async def stream_socket(self, line: bytes) -> tuple[socket.socket, sam.Reply]:
        """A new SAM socket that sent ``line`` (a STREAM command) and read its status."""
        if not self.alive:
            raise ServerUnavailable(
                f"the I2P router's SAM bridge at {self.endpoint} closed the session",
                hint="the router stopped or restarted; veil never falls back to a direct "
                "connection",
            )
        sock = await open_socket(self.endpoint)
        try:
            return sock, await command(sock, line)
        except BaseException:
            sock.close()
            raise

    async def connect_stream(self, destination: str, *, timeout: float) -> socket.socket:
        """A stream to ``destination`` (base64 or ``.b32.i2p``); retried while
        the peer's LeaseSet is not found yet, up to ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                sock, reply = await self.stream_socket(sam.stream_connect(self.id, destination))
            except (OSError, TimeoutError) as exc:
                raise sam_unavailable(self.endpoint, exc) from None
            try:
                sam.check(reply, "STREAM", "STATUS", "connecting over I2P")
                return sock
            except sam.SamError as exc:
                sock.close()
                retry = exc.result in ("CANT_REACH_PEER", "TIMEOUT", "PEER_NOT_FOUND")
                if not retry or loop.time() + 1 > deadline:
                    raise ServerUnavailable(str(exc)) from None
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        self._control.close()


def require_ed25519_key(text: str, where: str) -> str:
    """A private key blob from a file, checked; ``ConfigError`` naming the file."""
    try:
        sam.destination_of_private_key(text.strip())
    except sam.SamError as exc:
        raise ConfigError(f"{where} is not an I2P private key: {exc}") from None
    return text.strip()
