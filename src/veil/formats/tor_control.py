"""The few Tor control-protocol messages veil uses, without I/O.

veil asks a control port for exactly this and nothing more (so that a
filtering proxy such as Tails' onion-grater can allow it with a short
profile): ``PROTOCOLINFO 1``, ``AUTHCHALLENGE SAFECOOKIE`` and
``AUTHENTICATE`` to log in, ``ADD_ONION`` to publish a node's onion service
from its own key, and ``DEL_ONION`` to withdraw it. Never ``GETINFO``,
``GETCONF``/``SETCONF`` or events.

A reply is a list of lines with the same status code; ``parse_reply``
turns the raw lines (``250-key=value``, ``250 OK``) into a ``Reply``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from veil.errors import FormatError

SERVER_KEY = b"Tor safe cookie authentication server-to-controller hash"
CLIENT_KEY = b"Tor safe cookie authentication controller-to-server hash"
COOKIE_LENGTH = 32
NONCE_LENGTH = 32
_LINE = re.compile(r"^(\d{3})([ +-])(.*)$")
_SERVICE_ID = re.compile(r"^[a-z2-7]{56}$")


class ControlError(FormatError):
    """Tor answered a control command with an error, or not in the protocol."""


@dataclass
class Reply:
    status: int
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 250

    def values(self) -> dict[str, str]:
        """``key=value`` pairs of every line (first occurrence wins)."""
        out: dict[str, str] = {}
        for line in self.lines:
            key, sep, value = line.partition("=")
            if sep and key not in out:
                out[key] = value
        return out


def split_line(raw: str) -> tuple[int, str, str]:
    """``250-ServiceID=abc`` → (250, '-', 'ServiceID=abc')."""
    match = _LINE.match(raw.rstrip("\r\n"))
    if not match:
        raise ControlError(f"not a Tor control reply line: {raw[:60]!r}")
    return int(match.group(1)), match.group(2), match.group(3)


def quote(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ControlError("control strings cannot contain line breaks")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


@dataclass(frozen=True)
class ProtocolInfo:
    methods: frozenset[str]
    cookie_file: str | None


def parse_protocolinfo(reply: Reply) -> ProtocolInfo:
    if not reply.ok:
        raise ControlError(f"PROTOCOLINFO refused: {' '.join(reply.lines)}")
    for line in reply.lines:
        if line.startswith("AUTH "):
            match = re.match(r'AUTH METHODS=(\S+)(?: COOKIEFILE=("(?:[^"\\]|\\.)*"))?', line)
            if not match:
                break
            cookie = _unquote(match.group(2)) if match.group(2) else None
            return ProtocolInfo(frozenset(match.group(1).split(",")), cookie)
    raise ControlError("PROTOCOLINFO answer has no AUTH line")


def safecookie_client_hash(cookie: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    return hmac.new(CLIENT_KEY, cookie + client_nonce + server_nonce, hashlib.sha256).digest()


def check_authchallenge(reply: Reply, cookie: bytes, client_nonce: bytes) -> tuple[bytes, bytes]:
    """Verify Tor knows the cookie too; return (server nonce, our hash to send)."""
    if not reply.ok or not reply.lines:
        raise ControlError(f"AUTHCHALLENGE refused: {' '.join(reply.lines)}")
    match = re.search(r"SERVERHASH=([0-9A-Fa-f]{64}) SERVERNONCE=([0-9A-Fa-f]{64})", reply.lines[0])
    if not match:
        raise ControlError("malformed AUTHCHALLENGE answer")
    server_hash, server_nonce = bytes.fromhex(match.group(1)), bytes.fromhex(match.group(2))
    expected = hmac.new(SERVER_KEY, cookie + client_nonce + server_nonce, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, server_hash):
        raise ControlError("the control port does not know our cookie: not the tor we expected")
    return server_nonce, safecookie_client_hash(cookie, client_nonce, server_nonce)


def add_onion(key_blob: str, ports: list[tuple[int, str]]) -> str:
    """``ADD_ONION`` for an existing key; ``ports``: (virtual port, "127.0.0.1:local")."""
    if not ports:
        raise ControlError("an onion service needs at least one port")
    mappings = " ".join(f"Port={virtual},{target}" for virtual, target in ports)
    return f"ADD_ONION {key_blob} Flags=DiscardPK {mappings}"


def service_id(reply: Reply) -> str:
    if not reply.ok:
        raise ControlError(f"tor refused to add the onion service: {' '.join(reply.lines)}")
    sid = reply.values().get("ServiceID", "")
    if not _SERVICE_ID.match(sid):
        raise ControlError("tor's ADD_ONION answer has no ServiceID")
    return sid


def del_onion(sid: str) -> str:
    if not _SERVICE_ID.match(sid):
        raise ControlError("not an onion service id")
    return f"DEL_ONION {sid}"
