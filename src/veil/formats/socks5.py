"""SOCKS5 (RFC 1928) with username/password (RFC 1929), as Tor speaks it.

Sans-I/O: functions build the bytes a client sends and read the bytes a
proxy answers; ``veil.adapters.net.socks`` moves them over a TCP or unix socket.
Only what a Tor client needs is here: one CONNECT with the host name sent to
the proxy unresolved (ATYP 3, so names are resolved by Tor, never locally),
and username/password authentication, which Tor uses to put streams with
different credentials on different circuits (``IsolateSOCKSAuth``). The
greeting offers *only* username/password: a proxy that would accept the
stream without credentials would also lose the isolation, so it is refused.

Tor's extended error codes (0xF0-0xF7, onion services) are named so users
read "the onion service's descriptor was not found" rather than a number.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.errors import FormatError, UsageError

VERSION = 5
METHOD_USERPASS = 2
NO_ACCEPTABLE_METHOD = 0xFF
CMD_CONNECT = 1
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4

GREETING = bytes([VERSION, 1, METHOD_USERPASS])
METHOD_REPLY_SIZE = 2
AUTH_REPLY_SIZE = 2
REPLY_HEAD_SIZE = 5  # VER REP RSV ATYP + the first byte of the bound address

REPLY_MEANINGS = {
    1: "general failure",
    2: "connection not allowed by the proxy's rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "time to live expired (timed out)",
    7: "command not supported",
    8: "address type not supported",
    0xF0: "onion service descriptor not found (is the service running and published?)",
    0xF1: "onion service descriptor is invalid",
    0xF2: "onion service introduction failed",
    0xF3: "onion service rendezvous failed",
    0xF4: "onion service needs client authorization",
    0xF5: "onion service client authorization is wrong",
    0xF6: "not a valid onion address",
    0xF7: "onion service introduction timed out",
}


class SocksError(FormatError):
    """The proxy refused or answered something that is not SOCKS5."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Credentials:
    """What Tor isolates on: streams with different credentials never share a circuit."""

    username: str
    password: str

    def __post_init__(self) -> None:
        for name, value in (("username", self.username), ("password", self.password)):
            raw = value.encode("utf-8")
            if not 1 <= len(raw) <= 255:
                raise UsageError(f"a SOCKS5 {name} is 1 to 255 bytes")


def check_method_reply(data: bytes) -> None:
    """The proxy's answer to ``GREETING``: it must pick username/password."""
    if len(data) != METHOD_REPLY_SIZE or data[0] != VERSION:
        raise SocksError("the proxy does not speak SOCKS5 (is this really Tor's SocksPort?)")
    if data[1] == NO_ACCEPTABLE_METHOD:
        raise SocksError("the SOCKS5 proxy refuses username/password: streams cannot be isolated")
    if data[1] != METHOD_USERPASS:
        raise SocksError(f"the SOCKS5 proxy chose method {data[1]}, not username/password")


def auth_request(creds: Credentials) -> bytes:
    user, password = creds.username.encode("utf-8"), creds.password.encode("utf-8")
    return bytes([1, len(user)]) + user + bytes([len(password)]) + password


def check_auth_reply(data: bytes) -> None:
    if len(data) != AUTH_REPLY_SIZE or data[0] != 1:
        raise SocksError("malformed SOCKS5 authentication reply")
    if data[1] != 0:
        raise SocksError("the SOCKS5 proxy rejected the username/password")


def connect_request(host: str, port: int) -> bytes:
    """CONNECT to ``host`` given as a name (ATYP 3): the proxy resolves it."""
    if not 1 <= port <= 65535:
        raise UsageError(f"port {port} is out of range")
    name = host.encode("idna") if not host.isascii() else host.encode("ascii")
    if not 1 <= len(name) <= 255:
        raise UsageError(f"host name {host!r} is too long for SOCKS5")
    return bytes([VERSION, CMD_CONNECT, 0, ATYP_DOMAIN, len(name)]) + name + port.to_bytes(2, "big")


def reply_remaining(head: bytes) -> int:
    """Given the first ``REPLY_HEAD_SIZE`` bytes of a CONNECT reply, raise if it
    reports a failure, else return how many more bytes the reply has."""
    if len(head) != REPLY_HEAD_SIZE or head[0] != VERSION or head[2] != 0:
        raise SocksError("malformed SOCKS5 reply")
    code = head[1]
    if code != 0:
        meaning = REPLY_MEANINGS.get(code, f"error code {code:#x}")
        raise SocksError(meaning, code)
    atyp = head[3]
    if atyp == ATYP_IPV4:
        return 4 - 1 + 2
    if atyp == ATYP_IPV6:
        return 16 - 1 + 2
    if atyp == ATYP_DOMAIN:
        return head[4] + 2
    raise SocksError(f"SOCKS5 reply with unknown address type {atyp}")
