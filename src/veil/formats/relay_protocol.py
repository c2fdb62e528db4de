"""The tunnel protocol between a storage server behind NAT and a relay, and the
one thing a relay reads of a client's bytes: the SNI name of its ClientHello.

A backend opens TCP connections *out* to the relay (directly or through Tor).
Each such tunnel connection carries at most one client stream:

    backend -> relay   MAGIC                       "VEIL-RELAY/1\\n"
    relay -> backend   CHALLENGE  nonce (32 bytes, fresh per connection)
    backend -> relay   HELLO      name, HMAC-SHA256(secret, context | nonce | name)
    relay -> backend   ACCEPT | REFUSE reason
    ...idle: backend PING, relay PONG (so both notice a dead peer)...
    relay -> backend   STREAM     a client was paired with this connection
    backend -> relay   GO         nothing but stream bytes follow, both ways

Every message is a frame: one type byte, a two-byte big-endian length, the
payload. After STREAM and GO the connection is a plain byte pipe between the
client and the storage server's TLS listener; the relay never terminates TLS.

One connection per stream, not multiplexing: TCP keeps each stream's flow
control and ordering, so a slow client never stalls another; a broken stream
is a closed socket; the relay copies bytes without framing them; and no
stream can be spliced into another's by a framing bug. The cost, a TCP (or
Tor stream) set-up per client connection, is paid ahead of time: the backend
keeps a few idle tunnel connections ready and opens a new one as each is
claimed.

The secret never crosses the wire (an eavesdropper of the tunnel learns only
the name); a recorded HELLO is useless against a new nonce. Tickets are what a
relay operator hands to a backend operator::

    veil-relay://NAME:SECRET@TUNNEL_HOST:TUNNEL_PORT/PUBLIC_HOST:PUBLIC_PORT

PUBLIC_HOST:PUBLIC_PORT is the address the backend announces in its NURL:
the relay's own port for that backend (for clients that send no SNI, such as
Tahoe 1.20), or a name routed by SNI on the relay's shared port.

Pure: bytes in, bytes out, no sockets (those are in ``veil.adapters.net.relay``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import IntEnum

from veil.errors import FormatError
from veil.formats.nurl import normalize_host

MAGIC = b"VEIL-RELAY/1\n"
NONCE_SIZE = 32
SECRET_SIZE = 32
MAC_SIZE = 32
HEADER_SIZE = 3
MAX_PAYLOAD = 1024  # control frames are small; a larger one is an attack or a bug
TICKET_SCHEME = "veil-relay"
_CONTEXT = b"veil relay hello v1\x00"
_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_TICKET = re.compile(
    r"^veil-relay://(?P<name>[^:@/]+):(?P<secret>[A-Za-z0-9_-]+)@(?P<host>[^:/@]+):"
    r"(?P<port>[0-9]{1,5})/(?P<phost>[^:/@]+):(?P<pport>[0-9]{1,5})\Z"
)


class Frame(IntEnum):
    CHALLENGE = 1
    HELLO = 2
    ACCEPT = 3
    REFUSE = 4
    PING = 5
    PONG = 6
    STREAM = 7
    GO = 8


def encode_frame(kind: Frame, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise FormatError(f"a relay frame holds at most {MAX_PAYLOAD} bytes")
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


def parse_header(header: bytes) -> tuple[Frame, int]:
    """(type, payload length) of a frame header; ``FormatError`` if not one."""
    if len(header) != HEADER_SIZE:
        raise FormatError("a relay frame header is 3 bytes")
    try:
        kind = Frame(header[0])
    except ValueError:
        raise FormatError(f"unknown relay frame type {header[0]}") from None
    length = int.from_bytes(header[1:], "big")
    if length > MAX_PAYLOAD:
        raise FormatError(f"relay frame of {length} bytes is too long")
    return kind, length


def check_name(name: str) -> str:
    """A backend name: a DNS label (lower case letters, digits, inner hyphens)."""
    if not _NAME.match(name):
        raise FormatError(
            f"not a relay backend name: {name[:70]!r}",
            hint="use 1-63 lower case letters, digits and inner hyphens",
        )
    return name


def secret_text(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).decode("ascii").rstrip("=")


def parse_secret(text: str) -> bytes:
    try:
        secret = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, TypeError):
        secret = b""
    if len(secret) != SECRET_SIZE:
        raise FormatError(f"a relay secret is {SECRET_SIZE} bytes in URL-safe base64")
    return secret


def hello_mac(secret: bytes, nonce: bytes, name: str) -> bytes:
    return hmac.new(secret, _CONTEXT + nonce + name.encode("ascii"), hashlib.sha256).digest()


def encode_hello(secret: bytes, nonce: bytes, name: str) -> bytes:
    """The HELLO payload: one length byte, the name, the MAC over the nonce."""
    raw = check_name(name).encode("ascii")
    return bytes([len(raw)]) + raw + hello_mac(secret, nonce, name)


def parse_hello(payload: bytes) -> tuple[str, bytes]:
    """(name, mac) of a HELLO payload; ``FormatError`` if malformed."""
    if not payload or len(payload) != 1 + payload[0] + MAC_SIZE:
        raise FormatError("malformed relay HELLO")
    try:
        name = payload[1 : 1 + payload[0]].decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("malformed relay HELLO name") from None
    return check_name(name), payload[1 + payload[0] :]


def hello_is_valid(secret: bytes, nonce: bytes, name: str, mac: bytes) -> bool:
    return hmac.compare_digest(hello_mac(secret, nonce, name), mac)


@dataclass(frozen=True)
class RelayTicket:
    """What a backend needs to register with one relay (the secret included)."""

    name: str
    secret: bytes
    tunnel_host: str
    tunnel_port: int
    public_host: str
    public_port: int

    def __post_init__(self) -> None:
        check_name(self.name)
        if len(self.secret) != SECRET_SIZE:
            raise FormatError(f"a relay secret is {SECRET_SIZE} bytes")
        for port in (self.tunnel_port, self.public_port):
            if not 0 < port < 65536:
                raise FormatError(f"relay ticket port out of range: {port}")

    def to_string(self) -> str:
        return (
            f"{TICKET_SCHEME}://{self.name}:{secret_text(self.secret)}@{self.tunnel_host}:"
            f"{self.tunnel_port}/{self.public_host}:{self.public_port}"
        )

    def __repr__(self) -> str:  # the secret stays out of logs
        return f"RelayTicket({self.name}@{self.tunnel_host}:{self.tunnel_port})"

    __str__ = __repr__


def parse_ticket(text: str) -> RelayTicket:
    m = _TICKET.match(text.strip())
    if not m:
        raise FormatError(
            "not a relay ticket",
            hint="expected veil-relay://NAME:SECRET@HOST:PORT/PUBLIC_HOST:PUBLIC_PORT "
            "(the relay operator prints it with 'veil relay add-backend')",
        )
    return RelayTicket(
        m["name"],
        parse_secret(m["secret"]),
        normalize_host(m["host"]),
        int(m["port"]),
        normalize_host(m["phost"]),
        int(m["pport"]),
    )


@dataclass(frozen=True)
class ExternalRelay:
    """A relay veil does not tunnel to itself, such as a Pagekite frontend fed by
    the operator's own ``pagekite`` backend: only its public address, announced.
    Written ``pagekite://PUBLIC_HOST:PUBLIC_PORT``."""

    public_host: str
    public_port: int

    def to_string(self) -> str:
        return f"pagekite://{self.public_host}:{self.public_port}"


_EXTERNAL = re.compile(r"^pagekite://(?P<host>[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})/?\Z")


def parse_relay_entry(text: str) -> RelayTicket | ExternalRelay:
    """A ticket for a veil relay, or ``pagekite://HOST:PORT`` for a Pagekite frontend."""
    m = _EXTERNAL.match(text.strip())
    if m is None:
        return parse_ticket(text)
    port = int(m["port"])
    if not 0 < port < 65536:
        raise FormatError(f"relay port out of range: {port}")
    return ExternalRelay(normalize_host(m["host"]), port)


# -- SNI from a TLS ClientHello (read, never answered) ---------------------------

TLS_HANDSHAKE = 0x16
CLIENT_HELLO = 0x01
MAX_CLIENT_HELLO = 64 * 1024  # bytes a relay reads before giving up on a name


@dataclass(frozen=True)
class SniResult:
    """``complete`` False: feed more bytes. Else ``name`` (None: no SNI sent)."""

    complete: bool
    name: str | None = None


NEED_MORE = SniResult(False)


def _handshake_bytes(data: bytes) -> tuple[bytes, bool]:
    """The handshake bytes of the TLS records at the start of ``data`` and
    whether the last record is complete."""
    out, pos = bytearray(), 0
    while pos + 5 <= len(data):
        if data[pos] != TLS_HANDSHAKE or data[pos + 1] != 3:
            raise FormatError("not a TLS handshake record")
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if pos + 5 + length > len(data):
            out += data[pos + 5 :]
            return bytes(out), False
        out += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    return bytes(out), pos == len(data)


def sni_of_client_hello(data: bytes) -> SniResult:
    """The server name a TLS ClientHello at the start of ``data`` asks for.

    ``NEED_MORE`` until the whole ClientHello is there (it may span records and
    TCP segments); ``FormatError`` if the bytes are not a ClientHello.
    """
    if data and data[0] != TLS_HANDSHAKE:
        raise FormatError("not a TLS ClientHello")
    if len(data) > MAX_CLIENT_HELLO:
        raise FormatError("TLS ClientHello too long")
    hs, _ = _handshake_bytes(data)
    if len(hs) < 4:
        return NEED_MORE
    if hs[0] != CLIENT_HELLO:
        raise FormatError("the first TLS handshake message is not a ClientHello")
    length = int.from_bytes(hs[1:4], "big")
    if len(hs) < 4 + length:
        return NEED_MORE
    return SniResult(True, _sni_of_body(hs[4 : 4 + length]))


def _sni_of_body(body: bytes) -> str | None:
    reader = _Reader(body)
    reader.take(2 + 32)  # client version, random
    reader.take(reader.int(1))  # session id
    reader.take(reader.int(2))  # cipher suites
    reader.take(reader.int(1))  # compression methods
    if reader.left == 0:
        return None  # no extensions at all
    extensions = _Reader(reader.take(reader.int(2)))
    while extensions.left:
        kind, data = extensions.int(2), extensions.take(extensions.int(2))
        if kind != 0:  # server_name
            continue
        names = _Reader(data)
        names = _Reader(names.take(names.int(2)))
        while names.left:
            name_type, name = names.int(1), names.take(names.int(2))
            if name_type == 0:
                try:
                    return normalize_host(name.decode("ascii"))
                except UnicodeDecodeError:
                    raise FormatError("TLS server name is not ASCII") from None
        return None
    return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left:
            raise FormatError("truncated TLS ClientHello")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")
