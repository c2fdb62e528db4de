"""The renewal cap: what a friend needs to keep a tree alive, and nothing more.

    URI:VEIL-RENEWAL:<base32 of zlib(JSON)>

The JSON holds: ``v`` (1), ``secret`` (32 bytes, base32: the lease secret the
holder renews with — a dedicated one, not the owner's, so a new renewal cap
can replace an old one), ``pointer`` (the read cap of a small mutable file
holding the read cap of the current verify-cap list: reading it shows only
verify caps) and ``servers`` (the announcements of the grid's servers the
owner knew, so a node elsewhere can reach them).

There is no read key, write key or write enabler in it: the holder can renew
leases, check, and rebuild ciphertext shares of immutable objects, and never
decrypt a file, list a directory or publish a mutable file. It is a secret
all the same (it renews, and it reveals which storage indexes belong
together): ``repr``/``str`` never show it; ``to_string`` is for output only.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from veil.errors import CapabilityError, VeilError
from veil.formats import base32
from veil.formats import mutable_caps as mc

PREFIX = "URI:VEIL-RENEWAL:"
MAX_TEXT = 1 << 20


@dataclass(frozen=True)
class RenewalCap:
    secret: bytes
    pointer: mc.SSKReadCap
    servers: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False, compare=False)

    def to_string(self) -> str:
        body = {
            "v": 1,
            "secret": base32.b2a(self.secret),
            "pointer": self.pointer.to_string(),
            "servers": self.servers,
        }
        packed = zlib.compress(json.dumps(body, sort_keys=True).encode(), 9)
        return PREFIX + base32.b2a(packed)

    def __str__(self) -> str:
        return f"URI:VEIL-RENEWAL (pointer SI {base32.b2a(self.pointer.storage_index)[:5]}…)"

    def __repr__(self) -> str:
        return f"RenewalCap({self})"


def _bad(why: str) -> CapabilityError:
    return CapabilityError(
        f"not a valid renewal cap: {why}",
        hint="copy the whole line veil renewal create printed (URI:VEIL-RENEWAL:…)",
    )


def parse_renewal_cap(text: str) -> RenewalCap:
    text = text.strip()
    if not text.startswith(PREFIX):
        raise _bad("it does not start with URI:VEIL-RENEWAL:")
    if len(text) > MAX_TEXT:
        raise _bad("it is far too long")
    try:
        body = json.loads(zlib.decompress(base32.a2b(text[len(PREFIX) :]), bufsize=MAX_TEXT))
    except (VeilError, zlib.error, ValueError):
        raise _bad("it is damaged (cut short or mistyped?)") from None
    if not isinstance(body, dict) or body.get("v") != 1:
        raise _bad("unknown version")
    try:
        secret = base32.a2b(str(body["secret"]))
        pointer = mc.parse_ssk(str(body["pointer"]))
        servers = body.get("servers", {})
    except (KeyError, VeilError):
        raise _bad("a field is missing or damaged") from None
    if len(secret) != 32 or not isinstance(pointer, mc.SSKReadCap):
        raise _bad("a field is missing or damaged")
    if not isinstance(servers, dict) or not all(isinstance(v, dict) for v in servers.values()):
        raise _bad("the server list is damaged")
    return RenewalCap(secret, pointer, servers)
