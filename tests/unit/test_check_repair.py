"""veil.services.checker on an in-process grid: check, verify and repair of
immutable files (from the verify cap alone), SDMF and MDMF files (same
seqnum), with shares deleted and corrupted on real server cores."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from veil.adapters.storage.in_process_client import LocalStorageClient
from veil.adapters.storage.memory import MemoryBackend
from veil.formats import base32
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap
from veil.formats.params import EncodingParameters
from veil.services.broker import StorageBroker
from veil.services.checker import check
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.services.mutable.files import MutableFiles
from veil.testing.local_grid import local_grid

# distinct keys within one grid (a key is a storage index); reused across tests
_KEYS = itertools.cycle(
    [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
)
PARAMS = EncodingParameters(2, 4, 6)


@dataclass
class Session:
    broker: StorageBroker
    params: EncodingParameters

    def lease_secret(self) -> bytes:
        return b"L" * 32


def grid(count: int = 6) -> tuple[Session, list[LocalStorageClient]]:
    broker, clients = local_grid(count)
    return Session(broker, PARAMS), clients


def backend(c: LocalStorageClient) -> MemoryBackend:
    b = c.service.backend  # type: ignore[attr-defined]
    assert isinstance(b, MemoryBackend)
    return b


def all_shares(clients: list[LocalStorageClient], si: bytes) -> dict[int, bytes]:
    out = {}
    for c in clients:
        for (s, sh), (data, _) in backend(c).shares.items():
            if s == si:
                out[sh] = data
    return out


async def upload(session: Session, size: int = 300_000) -> tuple[CHKReadCap, bytes]:
    data = os.urandom(size)
    up = Uploader(
        session.broker,
        EncodingParameters(2, 4, 6, max_segment_size=65536),
        lease_secret=session.lease_secret(),
        convergence_secret=b"c" * 16,
    )
    result = await up.upload_bytes(data)
    assert isinstance(result.cap, CHKReadCap)
    return result.cap, data


async def test_healthy_file_checks_healthy_in_tahoe_shape() -> None:
    session, _ = grid()
    cap, _ = await upload(session)
    report = await check(session, cap.to_string(), verify=True)
    out = report.to_tahoe_json()
    assert out["summary"] == "Healthy"
    r = out["results"]
    assert (r["healthy"], r["recoverable"], r["count-shares-good"]) == (True, True, 6)
    assert (r["count-shares-needed"], r["count-shares-expected"]) == (2, 6)
    assert r["count-happiness"] == 6 and r["count-good-share-hosts"] == 6
    assert r["count-corrupt-shares"] == 0 and len(r["servers-responding"]) == 6
    assert sorted(r["sharemap"]) == [str(i) for i in range(6)]


async def test_deleted_shares_are_rebuilt_byte_for_byte_from_the_verify_cap() -> None:
    session, clients = grid(8)
    cap, data = await upload(session)
    si = cap.storage_index
    before = all_shares(clients, si)
    lost = [c for c in clients if any(s == si for s, _ in backend(c).shares)][:3]
    for c in lost:
        for key in [k for k in backend(c).shares if k[0] == si]:
            del backend(c).shares[key]
    verify_cap = cap.verify_cap()
    report = await check(session, verify_cap, repair=True)
    assert report.pre.healthy is False
    assert report.pre.summary == "Not Healthy: 3 shares (enc 2-of-6)"
    assert report.repair_attempted and report.repair_successful, report.repair_problem
    j = report.to_tahoe_json()
    assert j["post-repair-results"]["results"]["count-shares-good"] == 6
    assert all_shares(clients, si) == before  # Tahoe's uploader would have written the same
    # reads afterwards use only servers that took the repaired shares and the rest
    for c in lost:
        c.fail = True
    assert await Downloader(session.broker).download_bytes(cap) == data


async def test_verify_finds_corrupt_share_and_repair_places_it_elsewhere() -> None:
    session, clients = grid(7)
    cap, data = await upload(session)
    si = cap.storage_index
    holder = next(c for c in clients if any(s == si for s, _ in backend(c).shares))
    (key,) = [k for k in backend(holder).shares if k[0] == si]
    raw, leases = backend(holder).shares[key]
    backend(holder).shares[key] = (raw[:200] + bytes([raw[200] ^ 1]) + raw[201:], leases)
    light = await check(session, cap)
    assert light.pre.healthy  # a listed share counts without --verify, as in Tahoe
    report = await check(session, cap, verify=True, repair=True)
    assert report.pre.corrupt == [(holder.server_id, key[1])]
    assert report.pre.to_tahoe_json()["results"]["list-corrupt-shares"] == [
        [holder.server_id, base32.b2a(si), key[1]]
    ]
    assert report.repair_successful and report.post is not None
    assert report.post.shares_good == 6
    holder.fail = True
    assert await Downloader(session.broker).download_bytes(cap) == data


async def test_unrecoverable_file_is_reported_not_repaired() -> None:
    session, clients = grid()
    cap, _ = await upload(session)
    for c in clients[:5]:
        backend(c).shares.clear()
    report = await check(session, cap, repair=True)
    assert not report.pre.recoverable
    assert report.repair_attempted and not report.repair_successful
    assert "too few" in report.repair_problem


def _files(session: Session) -> MutableFiles:
    return MutableFiles(
        session.broker,
        PARAMS,
        lease_secret=session.lease_secret(),
        keygen=lambda: next(_KEYS),
        timeout=5,
    )


async def _mutable_repair_keeps_seqnum(mdmf: bool) -> None:
    session, clients = grid()
    files = _files(session)
    data = os.urandom(300_000 if mdmf else 5000)
    cap = await (files.mdmf().create(data) if mdmf else files.create(data))
    await files.overwrite(cap, data)  # seqnum 2
    si = cap.read_cap().storage_index
    slots = {c.server_id: dict(backend(c).slots) for c in clients}
    for c in clients[:2]:
        for key in [k for k in backend(c).slots if k[0] == si]:
            del backend(c).slots[key]
    report = await check(session, cap, repair=True, verify=True)
    assert not report.pre.healthy and report.pre.seqnum == 2
    assert report.repair_successful, report.repair_problem
    assert report.post is not None and report.post.seqnum == 2 and report.post.shares_good == 6
    assert report.repaired_shares == 2
    after = {c.server_id: dict(backend(c).slots) for c in clients}
    # the shares that stayed are untouched, so nothing was re-signed
    for c in clients[2:]:
        for key, raw in slots[c.server_id].items():
            if key[0] == si:
                assert after[c.server_id][key] == raw
    assert await files.read(cap) == data
    again = await check(session, cap, repair=True)
    assert again.pre.healthy and not again.repair_attempted


async def test_sdmf_repair_keeps_the_seqnum() -> None:
    await _mutable_repair_keeps_seqnum(mdmf=False)


async def test_mdmf_repair_keeps_the_seqnum() -> None:
    await _mutable_repair_keeps_seqnum(mdmf=True)


async def test_mutable_repair_needs_a_write_cap() -> None:
    session, clients = grid()
    files = _files(session)
    cap = await files.create(b"hello")
    si = cap.read_cap().storage_index
    for key in [k for k in backend(clients[0]).slots if k[0] == si]:
        del backend(clients[0]).slots[key]
    report = await check(session, mc.attenuate(cap), repair=True)
    assert report.repair_attempted and not report.repair_successful
    assert "write cap" in report.repair_problem


async def test_literal_caps_are_healthy_without_a_storage_index() -> None:
    session, _ = grid()
    report = await check(session, "URI:LIT:nbswy3dp")
    assert report.to_tahoe_json() == {"storage-index": "", "results": {"healthy": True}}


async def test_shares_crowded_on_one_server_are_spread_to_reach_happiness() -> None:
    session, clients = grid()
    for c in clients[1:]:
        c.fail = True
    up = Uploader(
        session.broker,
        EncodingParameters(2, 1, 6),
        lease_secret=session.lease_secret(),
        convergence_secret=b"c" * 16,
    )
    result = await up.upload_bytes(os.urandom(50_000))
    assert isinstance(result.cap, CHKReadCap)
    for c in clients[1:]:
        c.fail = False
    report = await check(session, result.cap, repair=True)
    assert report.pre.healthy and report.pre.happiness == 1  # all N shares, one server
    assert report.repair_attempted and report.post is not None
    assert report.post.happiness >= PARAMS.happy
    clients[0].fail = True
    assert len(await Downloader(session.broker).download_bytes(result.cap)) == 50_000
