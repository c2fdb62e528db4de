"""The recovery blob's envelope: round trips, the text form, bad blobs, and that
1000 blobs show no fixed byte at any offset and only the allowed sizes.

The envelope tests give the key directly (``seal``/``open_sealed``) or use
``CHEAP``, a parameter set only these tests pass in: the production decoder
(``recovery_blob.KDF_SETS``) never tries it. Two tests run the real Argon2id.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from veil.formats import recovery_blob as rb
from veil.formats.recovery_blob import RecoveryError

CHEAP = rb.KdfParams(200, "test-only", 1, 8 << 10)  # 8 KiB, one pass: never in KDF_SETS
CHEAP_SETS = (CHEAP,)


def cheap_blob(body: bytes, passphrase: bytes = b"pass", secret: bytes | None = None) -> bytes:
    return rb.encrypt(body, passphrase, kdf=CHEAP, friends_secret=secret)


def test_cheap_set_is_not_a_production_set() -> None:
    assert CHEAP not in rb.KDF_SETS
    assert all(k.memlimit >= 256 << 20 for k in rb.KDF_SETS)


def test_round_trip_with_a_given_key() -> None:
    key, salt = os.urandom(32), os.urandom(16)
    blob = rb.seal(b"hello", key, salt, CHEAP, (2, 3))
    assert len(blob) == 4096 and blob[:16] == salt
    opened = rb.open_sealed(blob, key, CHEAP)
    assert opened is not None
    assert (opened.body, opened.friends) == (b"hello", (2, 3))
    assert rb.open_sealed(blob, os.urandom(32), CHEAP) is None
    other = rb.KdfParams(201, "other", 1, 8 << 10)
    assert rb.open_sealed(blob, key, other) is None  # the id inside must be the set used


def test_padding_to_size_classes() -> None:
    for size, expected in ((0, 4096), (4000, 4096), (4096, 16384), (20000, 65536)):
        assert len(rb.seal(bytes(size), os.urandom(32), os.urandom(16), CHEAP)) == expected
    with pytest.raises(RecoveryError, match="too large"):
        rb.size_class(rb.SIZE_CLASSES[-1])


def test_text_form_round_trip_and_typos() -> None:
    blob = cheap_blob(b"x" * 100)
    text = rb.armour(blob)
    assert rb.read_blob(text.encode()) == blob
    assert rb.read_blob(text.upper().encode()) == blob  # case does not matter
    lines = text.splitlines()
    typo = lines[3][:5] + ("a" if lines[3][5] != "a" else "b") + lines[3][6:]
    with pytest.raises(RecoveryError, match="line 4 "):
        rb.unarmour("\n".join([*lines[:3], typo, *lines[4:]]))
    swapped = [lines[1], lines[0], *lines[2:]]
    with pytest.raises(RecoveryError, match="line 1 "):
        rb.unarmour("\n".join(swapped))


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],  # truncated
        lambda b: b[:4000],
        lambda b: b + b"\0",
        lambda b: b"",
    ],
)
def test_truncated_or_extended_blobs_are_refused_before_any_key_work(damage: object) -> None:
    blob = cheap_blob(b"body")
    with pytest.raises(RecoveryError, match="not a whole recovery blob"):
        rb.decrypt(damage(blob), b"pass", kdfs=CHEAP_SETS)  # type: ignore[operator]


def test_bit_flips_random_bytes_and_wrong_passphrases_are_one_message() -> None:
    blob = cheap_blob(b"body")
    assert rb.decrypt(blob, b"pass", kdfs=CHEAP_SETS).body == b"body"
    for offset in (0, 17, 40, 41, 2000, 4095):  # salt, nonce, ciphertext, tag
        flipped = bytearray(blob)
        flipped[offset] ^= 0x01
        with pytest.raises(RecoveryError, match="does not open this recovery blob"):
            rb.decrypt(bytes(flipped), b"pass", kdfs=CHEAP_SETS)
    with pytest.raises(RecoveryError, match="does not open"):
        rb.decrypt(os.urandom(4096), b"pass", kdfs=CHEAP_SETS)
    with pytest.raises(RecoveryError, match="does not open"):
        rb.decrypt(blob, b"Pass", kdfs=CHEAP_SETS)


def test_friends_secret_is_part_of_the_key() -> None:
    secret = os.urandom(32)
    blob = cheap_blob(b"body", secret=secret)
    assert rb.decrypt(blob, b"pass", friends_secret=secret, kdfs=CHEAP_SETS).body == b"body"
    for wrong in (None, os.urandom(32)):
        with pytest.raises(RecoveryError, match="not open"):
            rb.decrypt(blob, b"pass", friends_secret=wrong, kdfs=CHEAP_SETS)


def test_a_thousand_blobs_show_no_fixed_byte_and_only_allowed_sizes() -> None:
    """How it decides: 500 blobs of one same body and passphrase and 500 of
    different bodies (sizes 0 to 30000, so three size classes) and
    passphrases. For every offset of the 4096-byte prefix all blobs share, the
    most common byte value may occur at most 20 times among the 1000 (a
    uniform byte gives ~3.9 on average; more than 20 anywhere has a
    probability below 1e-6 even over 4096 offsets), so no byte is fixed or
    biased. Every length must be one of SIZE_CLASSES."""
    same = [cheap_blob(b"same body", b"same passphrase") for _ in range(500)]
    sizes = [(i * 61) % 30000 for i in range(500)]
    different = [cheap_blob(os.urandom(n), b"pass %d" % n) for n in sizes]
    blobs = same + different
    assert {len(b) for b in blobs} <= set(rb.SIZE_CLASSES)
    assert len({len(b) for b in blobs}) == 3
    worst = 0
    for offset in range(4096):
        counts = Counter(b[offset] for b in blobs)
        worst = max(worst, counts.most_common(1)[0][1])
    assert worst <= 20, f"a byte value repeats {worst} times at one offset"
    # the end of every blob (tag, and the padding's ciphertext) too
    for back in range(1, 65):
        counts = Counter(b[-back] for b in blobs)
        assert counts.most_common(1)[0][1] <= 20


def test_real_kdf_parameter_sets_tried_in_turn() -> None:
    """The real Argon2id: a low-memory blob opens (the default set is tried first,
    then this one). A wrong passphrase with the real sets: tests/integration."""
    blob = rb.encrypt(b"body", b"a good passphrase", kdf=rb.LOW_MEMORY_KDF)
    opened = rb.decrypt(blob, b"a good passphrase")
    assert opened.kdf == rb.LOW_MEMORY_KDF and opened.body == b"body"
