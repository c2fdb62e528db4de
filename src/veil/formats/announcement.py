"""Signed announcements (Tahoe's format, spec digest §7.2) and the seqnum rule.

An announcement travels as ``(msg, sig, key)``: ``msg`` is the UTF-8 JSON of
the announcement dict, ``sig`` is ``v0-`` + b32 of the Ed25519 signature over
exactly those bytes, ``key`` is ``v0-`` + b32 of the public key (which is also
the server id). ``AnnouncementBook`` keeps the newest announcement per
(service, key): an identical one is ignored, a changed one replaces the old
only with a strictly larger integer ``seqnum``, so replays are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from veil.errors import FormatError, VeilError
from veil.formats import base32

MAX_ANNOUNCEMENT = 64 * 1024


@dataclass(frozen=True)
class SignedAnnouncement:
    msg: str
    sig: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"msg": self.msg, "sig": self.sig, "key": self.key}

    @classmethod
    def from_json(cls, doc: Any) -> SignedAnnouncement:
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) for k in ("msg", "sig", "key")
        ):
            raise FormatError("an announcement needs string fields msg, sig and key")
        return cls(doc["msg"], doc["sig"], doc["key"])


def sign(announcement: dict[str, Any], key: Ed25519PrivateKey) -> SignedAnnouncement:
    msg = json.dumps(announcement)
    signature = key.sign(msg.encode("utf-8"))
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SignedAnnouncement(msg, "v0-" + base32.b2a(signature), "v0-" + base32.b2a(public))


def verify(signed: SignedAnnouncement) -> dict[str, Any]:
    """The announcement dict, if the signature is good; ``FormatError`` otherwise."""
    if len(signed.msg) > MAX_ANNOUNCEMENT:
        raise FormatError("announcement too large")
    if not (signed.key.startswith("v0-") and signed.sig.startswith("v0-")):
        raise FormatError("announcement is not signed with a v0- Ed25519 key")
    try:
        public = Ed25519PublicKey.from_public_bytes(base32.a2b(signed.key[3:]))
        public.verify(base32.a2b(signed.sig[3:]), signed.msg.encode("utf-8"))
        ann = json.loads(signed.msg)
    except (InvalidSignature, ValueError, VeilError):
        raise FormatError("announcement signature does not verify") from None
    if not isinstance(ann, dict) or not isinstance(ann.get("service-name"), str):
        raise FormatError("announcement lacks a service-name")
    if not isinstance(ann.get("seqnum"), int):
        raise FormatError("announcement lacks an integer seqnum")
    return ann


class AnnouncementBook:
    """The newest verified announcement per (service, server key)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[SignedAnnouncement, dict[str, Any]]] = {}

    def offer(self, signed: SignedAnnouncement) -> bool:
        """Verify and keep ``signed``; True if it was new. Raises ``FormatError``
        for a forged announcement and for a replay of an older seqnum."""
        ann = verify(signed)
        slot = (ann["service-name"], signed.key)
        old = self.entries.get(slot)
        if old is not None:
            if old[0] == signed:
                return False
            if ann["seqnum"] <= old[1]["seqnum"]:
                raise FormatError(
                    f"stale announcement from {signed.key[:16]}: seqnum {ann['seqnum']} "
                    f"is not newer than {old[1]['seqnum']}"
                )
        self.entries[slot] = (signed, ann)
        return True

    def servers(self, service: str = "storage") -> dict[str, dict[str, Any]]:
        return {key: ann for (svc, key), (_, ann) in self.entries.items() if svc == service}

    def signed(self, service: str = "storage") -> list[SignedAnnouncement]:
        return [s for (svc, _), (s, _) in self.entries.items() if svc == service]
