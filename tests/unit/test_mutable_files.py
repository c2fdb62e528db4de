"""SDMF mutable files on an in-process grid: round trips, a sequence of writes
against a model, forged and corrupt shares, and the faults the issue names
(a stale server outvoted, a writer killed mid-publish, two writers at once)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.codec import make_codec
from veil.errors import IntegrityError, NotEnoughSharesError
from veil.formats import mutable_caps as mc
from veil.formats import sdmf
from veil.formats.params import EncodingParameters
from veil.services.mutable.files import MutableFiles
from veil.testing.local_grid import local_grid

_KEYS = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
_next = iter(range(10**9))


def _key() -> rsa.RSAPrivateKey:
    return _KEYS[next(_next) % len(_KEYS)]  # tests reuse two keys: key generation is slow


def files(count: int = 5, k: int = 2, n: int = 5) -> tuple[MutableFiles, list]:  # type: ignore[type-arg]
    broker, clients = local_grid(count)
    mf = MutableFiles(
        broker, EncodingParameters(k, 3, n), lease_secret=b"s" * 32, keygen=_key, timeout=5
    )
    return mf, clients


@pytest.mark.parametrize("size", [0, 1, 55, 4096, 100_001])
async def test_round_trip(size: int) -> None:
    mf, _ = files()
    data = os.urandom(size)
    cap = await mf.create(data)
    assert await mf.read(cap) == data
    assert await mf.read(cap.read_cap()) == data


@settings(max_examples=15, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=5))
def test_a_sequence_of_writes_reads_as_the_last(contents: list[bytes]) -> None:
    async def go() -> None:
        mf, _ = files()
        cap = await mf.create(b"first")
        for i, data in enumerate(contents, start=2):
            assert await mf.overwrite(cap, data) == i
            assert await mf.read(cap) == data

    asyncio.run(go())


def test_forged_and_corrupt_shares_are_caught() -> None:
    key = _KEYS[0]
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    fingerprint = mc.fingerprint_from_pubkey(pub)
    codec = make_codec(2, 5)
    shares = sdmf.encode_version(
        b"some data", readkey=b"r" * 16, private_key=key, enc_privkey=b"e" * 1200, seqnum=3,
        iv=b"i" * 16, k=2, n=5, encode_segment=codec.encode_segment,
    )  # fmt: skip
    for sh, share in enumerate(shares):
        parsed = sdmf.parse_share(share.pack())
        assert parsed == share
        sdmf.verify_share(parsed, sh, fingerprint)
    good = shares[1]
    for bad, why in [
        (replace(good, seqnum=4), "signature"),
        (replace(good, block=b"x" + good.block[1:]), "block"),
        (replace(good, pubkey=_other_pubkey()), "fingerprint"),
    ]:
        with pytest.raises(IntegrityError, match=why):
            sdmf.verify_share(bad, 1, fingerprint)
    with pytest.raises(IntegrityError):
        sdmf.verify_share(good, 2, fingerprint)  # share 1's chain is not share 2's
    assert sdmf.decrypt({0: shares[0], 4: shares[4]}, b"r" * 16, codec.decode) == b"some data"


def _other_pubkey() -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return _KEYS[1].public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


async def test_a_stale_server_is_outvoted() -> None:
    mf, clients = files()
    cap = await mf.create(b"version one")
    clients[0].fail = clients[1].fail = True
    await mf.overwrite(cap, b"version two")
    clients[0].fail = clients[1].fail = False  # they come back holding version one
    assert await mf.read(cap) == b"version two"
    assert await mf.overwrite(cap, b"version three") == 3  # and it lands everywhere
    assert await mf.read(cap) == b"version three"


async def test_a_writer_killed_mid_publish_leaves_a_readable_version() -> None:
    mf, clients = files()
    mf.timeout = 1.0
    cap = await mf.create(b"old")
    for c in clients:
        c.writes = 0
    clients[3].hang = clients[4].hang = True  # the publish cannot finish on its own
    task = asyncio.ensure_future(mf.overwrite(cap, b"new"))
    while sum(c.writes for c in clients) < 2:
        await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()  # the writer dies with some servers written and others not
    with pytest.raises(asyncio.CancelledError):
        await task
    clients[3].hang = clients[4].hang = False
    assert await mf.read(cap) in (b"old", b"new")
    assert await mf.overwrite(cap, b"again") >= 3
    assert await mf.read(cap) == b"again"


async def test_two_writers_at_once_are_serialized() -> None:
    """Two whole-file overwrites at once both finish, one after the other (the
    loser of the race waits and writes again): the later seqnum is what reads."""
    mf, _ = files()
    cap = await mf.create(b"base")
    results = await asyncio.gather(mf.overwrite(cap, b"writer A"), mf.overwrite(cap, b"writer B"))
    assert sorted(results) == [2, 3]
    assert await mf.read(cap) == (b"writer A" if results[0] == 3 else b"writer B")


async def test_too_few_shares_is_a_clear_error() -> None:
    mf, clients = files()
    cap = await mf.create(b"data")
    for c in clients[:4]:
        c.fail = True
    with pytest.raises(NotEnoughSharesError, match="not enough good shares"):
        await mf.read(cap)
