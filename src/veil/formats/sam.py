"""The SAM v3 bridge protocol of I2P routers (i2pd, Java I2P), without I/O.

veil speaks exactly this to a router's SAM port (``veil.adapters.net.i2p``
moves the bytes):

    HELLO VERSION MIN=3.1 MAX=3.3                      on every new socket
    SESSION CREATE STYLE=STREAM ID=.. DESTINATION=..   one per destination; the
        SIGNATURE_TYPE=7 inbound.quantity=3 ...        session lives as long as
                                                       this socket
    STREAM CONNECT ID=.. DESTINATION=.. SILENT=false   outgoing stream (new socket)
    STREAM ACCEPT ID=.. SILENT=false                   incoming stream (new socket)
    STREAM FORWARD ID=.. PORT=.. SILENT=true           SAM dials our listener
    DEST GENERATE SIGNATURE_TYPE=7                     a new key pair
    NAMING LOOKUP NAME=..                              a name's destination

Every command is one line; every answer is one line ``TOPIC KIND KEY=VALUE...``
(values may be quoted). ``parse_reply`` reads it and ``check`` turns a
``RESULT`` other than OK into a ``SamError`` with words a user can act on.

Destinations use I2P's base64 (``-~`` for ``+/``). A destination's address is
``base32(SHA-256(destination)).b32.i2p`` (52 letters): it names the key, so
like an onion address it cannot be forged. ``destination_of_private_key``
cuts the public destination out of a private key blob (the file kept in
``private/``), so a node knows its own address without asking the router.
Signature type 7 is Ed25519 (EdDSA_SHA512_Ed25519); SAM's default, DSA-SHA1,
is never asked for.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from veil.errors import FormatError

SIGNATURE_TYPE_ED25519 = 7
HELLO = b"HELLO VERSION MIN=3.1 MAX=3.3\n"
B32_SUFFIX = ".b32.i2p"
B32_LENGTH = 52  # letters of a 32-byte hash in base32, without padding
_I2P_TO_STD = bytes.maketrans(b"-~", b"+/")
_STD_TO_I2P = bytes.maketrans(b"+/", b"-~")
_B64 = re.compile(r"^[A-Za-z0-9~-]+={0,2}\Z")
_B32 = re.compile(r"^[a-z2-7]{52}\.b32\.i2p\Z")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
DESTINATION_MIN = 387  # 256 public key + 128 signing key + 3 certificate header
# signing private key lengths by signature type (I2P common structures spec)
SIGNING_PRIVATE_LENGTH = {0: 20, 1: 32, 2: 48, 3: 66, 7: 32}
ENCRYPTION_PRIVATE_LENGTH = 256

# RESULT values, in words (SAM v3 spec); any other is shown as it came
RESULTS = {
    "CANT_REACH_PEER": "the I2P destination cannot be reached (its router is not in the "
    "network, or its LeaseSet has not been published yet)",
    "TIMEOUT": "the I2P router timed out",
    "PEER_NOT_FOUND": "the I2P destination is not known to the network",
    "KEY_NOT_FOUND": "the I2P name is not known",
    "INVALID_KEY": "the I2P router rejected the destination key",
    "INVALID_ID": "the I2P router does not know this SAM session",
    "DUPLICATED_ID": "a SAM session with this name already exists",
    "DUPLICATED_DEST": "this I2P destination is already in use by another session",
    "ALREADY_ACCEPTING": "the SAM session is already accepting a stream",
    "I2P_ERROR": "the I2P router reported an error",
    "NOVERSION": "the I2P router speaks no SAM version between 3.1 and 3.3",
}


class SamError(FormatError):
    """The SAM bridge refused a command or answered outside the protocol.
    ``result`` is SAM's RESULT code (``""`` when the answer was malformed)."""

    def __init__(self, message: str, *, result: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


@dataclass(frozen=True)
class Reply:
    topic: str
    kind: str
    values: Mapping[str, str] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return self.values.get("RESULT", "")


def parse_reply(line: bytes | str) -> Reply:
    """``HELLO REPLY RESULT=OK VERSION=3.1`` → Reply('HELLO', 'REPLY', {...})."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    try:
        words = shlex.split(text.strip(), posix=True)
    except ValueError:
        raise SamError(f"not a SAM answer: {text[:60]!r}") from None
    if len(words) < 2 or "=" in words[0] or "=" in words[1]:
        raise SamError(f"not a SAM answer: {text[:60]!r}")
    values = {}
    for word in words[2:]:
        key, _, value = word.partition("=")
        values[key] = value
    return Reply(words[0], words[1], values)


def check(reply: Reply, topic: str, kind: str, what: str) -> Reply:
    """``reply`` if it is ``topic kind RESULT=OK``; else a ``SamError`` in words."""
    if (reply.topic, reply.kind) != (topic, kind):
        raise SamError(f"{what}: the SAM bridge answered {reply.topic} {reply.kind}")
    if reply.result != "OK":
        meaning = RESULTS.get(reply.result, f"RESULT={reply.result or '(none)'}")
        message = reply.values.get("MESSAGE", "")
        detail = f" ({message[:120]})" if message else ""
        raise SamError(f"{what}: {meaning}{detail}", result=reply.result)
    return reply


def _word(value: str, what: str, *, forbid: str = "") -> str:
    if not value or any(c in value for c in ' \t\r\n"' + forbid):
        raise SamError(
            f"{what} must be one word without spaces or quotes{forbid and ' or ' + forbid}"
        )
    return value


def session_id(text: str) -> str:
    if not _ID.match(text):
        raise SamError(f"a SAM session id is 1-64 letters, digits, '_', '.' or '-': {text!r}")
    return text


def session_create(
    sid: str,
    destination: str = "TRANSIENT",
    *,
    options: Mapping[str, str] | None = None,
) -> bytes:
    """``SESSION CREATE`` for a stream session with an Ed25519 destination."""
    words = [
        "SESSION CREATE STYLE=STREAM",
        f"ID={session_id(sid)}",
        f"DESTINATION={_word(destination, 'a destination')}",
        f"SIGNATURE_TYPE={SIGNATURE_TYPE_ED25519}",
    ]
    words += [
        f"{_word(k, 'an option', forbid='=')}={_word(v, 'an option value')}"
        for k, v in (options or {}).items()
    ]
    return (" ".join(words) + "\n").encode("ascii")


def stream_connect(sid: str, destination: str) -> bytes:
    """``STREAM CONNECT`` to a base64 destination or a ``.b32.i2p`` address."""
    return (
        f"STREAM CONNECT ID={session_id(sid)} DESTINATION={_word(destination, 'a destination')} "
        "SILENT=false\n"
    ).encode("ascii")


def stream_accept(sid: str) -> bytes:
    return f"STREAM ACCEPT ID={session_id(sid)} SILENT=false\n".encode("ascii")


def stream_forward(sid: str, port: int, host: str = "127.0.0.1", *, silent: bool = True) -> bytes:
    """``STREAM FORWARD``: SAM connects to ``host:port`` for each incoming stream;
    ``silent``: without the peer's destination line first (raw bytes only)."""
    if not 0 < port < 65536:
        raise SamError(f"port out of range: {port}")
    flag = "true" if silent else "false"
    return (
        f"STREAM FORWARD ID={session_id(sid)} PORT={port} HOST={_word(host, 'a host')} "
        f"SILENT={flag}\n"
    ).encode("ascii")


def dest_generate() -> bytes:
    return f"DEST GENERATE SIGNATURE_TYPE={SIGNATURE_TYPE_ED25519}\n".encode("ascii")


def naming_lookup(name: str) -> bytes:
    return f"NAMING LOOKUP NAME={_word(name, 'a name')}\n".encode("ascii")


def parse_naming_reply(reply: Reply, name: str) -> str:
    """The base64 destination of a ``NAMING REPLY``."""
    check(reply, "NAMING", "REPLY", f"looking up {name if name == 'ME' else 'an I2P name'}")
    value = reply.values.get("VALUE", "")
    destination_bytes(value)
    return value


# -- keys and addresses ----------------------------------------------------------


def b64decode(text: str) -> bytes:
    """I2P base64 (``-~`` alphabet, padding optional) to bytes."""
    text = text.strip()
    if not _B64.match(text):
        raise SamError("not I2P base64 (letters, digits, '-' and '~')")
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded.encode("ascii").translate(_I2P_TO_STD), validate=True)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).translate(_STD_TO_I2P).decode("ascii")


def _destination_length(data: bytes) -> int:
    if len(data) < DESTINATION_MIN:
        raise SamError(f"an I2P destination has at least {DESTINATION_MIN} bytes, not {len(data)}")
    cert_len = int.from_bytes(data[385:387], "big")
    total = DESTINATION_MIN + cert_len
    if len(data) < total:
        raise SamError("an I2P destination's certificate runs past its end")
    return total


def destination_bytes(text: str) -> bytes:
    """A public destination from its base64 text; ``SamError`` if malformed."""
    data = b64decode(text)
    if _destination_length(data) != len(data):
        raise SamError("not a public I2P destination (extra bytes after its certificate)")
    return data


def signature_type(destination: bytes) -> int:
    """The signature type of a destination's key certificate (0: none, DSA-SHA1)."""
    length = _destination_length(destination)
    if destination[384] == 5 and length >= DESTINATION_MIN + 4:  # KEY certificate
        kind: int = struct.unpack(">H", destination[387:389])[0]
        return kind
    return 0


def destination_of_private_key(private_b64: str) -> str:
    """The public destination (base64) at the start of a private key blob, as
    ``SESSION CREATE`` and ``DEST GENERATE`` give it (destination, 256-byte
    encryption key, signing key)."""
    data = b64decode(private_b64)
    length = _destination_length(data)
    destination = data[:length]
    sig = signature_type(destination)
    if sig != SIGNATURE_TYPE_ED25519:
        raise SamError(f"the I2P key has signature type {sig}; veil uses only Ed25519 (7)")
    if len(data) < length + ENCRYPTION_PRIVATE_LENGTH + SIGNING_PRIVATE_LENGTH[sig]:
        raise SamError("the I2P private key is cut short (only a public destination?)")
    return b64encode(destination)


def b32_address(destination_b64: str) -> str:
    """``<52 letters>.b32.i2p`` of a public destination."""
    digest = hashlib.sha256(destination_bytes(destination_b64)).digest()
    return base64.b32encode(digest).decode("ascii").lower().rstrip("=") + B32_SUFFIX


def is_b32_address(host: str) -> bool:
    return bool(_B32.match(host.strip().lower()))
