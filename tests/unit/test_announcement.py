"""Signed announcements: Tahoe's (msg, sig, key) format and the seqnum rule."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from veil.errors import FormatError
from veil.formats.announcement import AnnouncementBook, SignedAnnouncement, sign, verify


def ann(seqnum: int, **extra: object) -> dict[str, object]:
    return {"service-name": "storage", "seqnum": seqnum, "nickname": "n", **extra}


def test_sign_and_verify_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign(ann(1), key)
    assert signed.key.startswith("v0-") and signed.sig.startswith("v0-")
    assert verify(signed)["seqnum"] == 1
    assert SignedAnnouncement.from_json(json.loads(json.dumps(signed.to_json()))) == signed


def test_forgeries_are_refused() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signed = sign(ann(1), key)
    tampered = SignedAnnouncement(signed.msg.replace('"n"', '"evil"'), signed.sig, signed.key)
    wrong_key = SignedAnnouncement(signed.msg, signed.sig, sign(ann(1), other).key)
    unsigned = SignedAnnouncement(signed.msg, "", signed.key)
    for bad in (tampered, wrong_key, unsigned):
        with pytest.raises(FormatError):
            verify(bad)
    with pytest.raises(FormatError):
        SignedAnnouncement.from_json({"msg": 1})
    with pytest.raises(FormatError, match="seqnum"):
        verify(sign({"service-name": "storage"}, key))


def test_replays_and_stale_announcements_are_refused() -> None:
    key = Ed25519PrivateKey.generate()
    book = AnnouncementBook()
    first, second = sign(ann(1), key), sign(ann(2, nickname="new"), key)
    assert book.offer(first)
    assert not book.offer(first)  # identical: ignored
    assert book.offer(second)
    with pytest.raises(FormatError, match="stale"):
        book.offer(first)  # a replay of an older seqnum
    assert book.servers() == {second.key: verify(second)}
    assert book.servers("other") == {}
