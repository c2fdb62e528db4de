"""A connection to Tor's control port: log in, add and remove onion services.

One command at a time, each answered before the next is sent. Logs in with
(in order of preference) SAFECOOKIE, COOKIE, HASHEDPASSWORD (from
``TOR_CONTROL_PASSWD``) or NULL, whichever Tor offers and we can do. The
onion service lives as long as this connection (no ``Flags=Detach``), so a
node that dies takes its service down with it.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from veil.adapters.net.socks import connect_endpoint
from veil.errors import ConfigError
from veil.formats import tor_control as tc
from veil.formats.tor_settings import Endpoint

TIMEOUT = 30.0


class TorControl:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._lock = asyncio.Lock()
        self.sent: list[str] = []  # command verbs, for tests and the log

    @classmethod
    async def connect(
        cls, endpoint: Endpoint, *, password: str | None = None, cookie_file: str | None = None
    ) -> TorControl:
        try:
            sock = await connect_endpoint(endpoint)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"Tor's control port {endpoint} does not answer "
                f"({getattr(exc, 'strerror', None) or exc})",
                hint="an onion service needs tor's control port; is tor running?",
            ) from None
        if not endpoint.is_unix:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader, writer = await asyncio.open_connection(sock=sock)
        control = cls(reader, writer)
        try:
            await control._authenticate(password, cookie_file)
        except BaseException:
            await control.close()
            raise
        return control

    async def command(self, line: str) -> tc.Reply:
        async with self._lock:
            self.sent.append(line.split(" ", 1)[0])
            self._writer.write(line.encode("ascii") + b"\r\n")
            await self._writer.drain()
            return await asyncio.wait_for(self._read_reply(), TIMEOUT)

    async def _read_reply(self) -> tc.Reply:
        lines: list[str] = []
        while True:
            raw = await self._reader.readline()
            if not raw:
                raise tc.ControlError("tor closed the control connection")
            status, kind, text = tc.split_line(raw.decode("utf-8", "replace"))
            if status == 650:
                continue  # an event: we never ask for any; ignore stray ones
            lines.append(text)
            if kind == "+":  # a data block up to a line with a single "."
                while (more := await self._reader.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(more.decode("utf-8", "replace").rstrip("\r\n"))
            if kind == " ":
                return tc.Reply(status, lines)

    async def _authenticate(self, password: str | None, cookie_file: str | None) -> None:
        info = tc.parse_protocolinfo(await self.command("PROTOCOLINFO 1"))
        cookie_path = cookie_file or info.cookie_file
        if "SAFECOOKIE" in info.methods and cookie_path:
            cookie = _read_cookie(cookie_path)
            nonce = os.urandom(tc.NONCE_LENGTH)
            challenge = await self.command(f"AUTHCHALLENGE SAFECOOKIE {nonce.hex()}")
            _, client_hash = tc.check_authchallenge(challenge, cookie, nonce)
            reply = await self.command(f"AUTHENTICATE {client_hash.hex()}")
        elif "COOKIE" in info.methods and cookie_path:
            reply = await self.command(f"AUTHENTICATE {_read_cookie(cookie_path).hex()}")
        elif "HASHEDPASSWORD" in info.methods and password is not None:
            reply = await self.command(f"AUTHENTICATE {tc.quote(password)}")
        elif "NULL" in info.methods:
            reply = await self.command("AUTHENTICATE")
        else:
            offered = ", ".join(sorted(info.methods))
            raise ConfigError(
                f"cannot log in to Tor's control port (it offers {offered})",
                hint="set TOR_CONTROL_PASSWD or TOR_CONTROL_COOKIE_AUTH_FILE",
            )
        if not reply.ok:
            raise ConfigError(f"Tor's control port refused our login: {' '.join(reply.lines)}")

    async def add_onion(self, key_blob: str, ports: list[tuple[int, str]]) -> str:
        return tc.service_id(await self.command(tc.add_onion(key_blob, ports)))

    async def del_onion(self, service_id: str) -> None:
        await self.command(tc.del_onion(service_id))

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (OSError, ConnectionError):
            pass


def _read_cookie(path: str) -> bytes:
    try:
        cookie = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read Tor's control cookie {path}: {exc.strerror}",
            hint="the user running veil must be allowed to read it (e.g. the debian-tor group)",
        ) from None
    if len(cookie) != tc.COOKIE_LENGTH:
        raise ConfigError(f"{path} is not a Tor control cookie (not 32 bytes)")
    return cookie
