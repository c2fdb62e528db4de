"""The storage server core, run against the disk and the memory backend alike."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.memory import MemoryBackend
from veil.errors import BadRequest, Conflict, NotAllowed, NotFound, Unauthorized
from veil.formats import base32
from veil.formats.container import LEASE_DURATION, hash_secret
from veil.services.storage.server import OutOfRange, StorageServer

SI = base32.a2b("ipyccq7zkvlnf22ghlklp2klbq")
R, C, U = b"r" * 32, b"c" * 32, b"upload-secret"
VECTORS = Path(__file__).parent.parent / "data" / "vectors"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "disk"])
def make_server(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., StorageServer]:
    clock = Clock()

    def make(**kw: object) -> StorageServer:
        backend = MemoryBackend() if request.param == "memory" else DiskBackend(tmp_path / "st")
        if request.param == "memory" and hasattr(make, "mem"):
            backend = make.mem  # type: ignore[attr-defined]
        make.mem = backend  # type: ignore[attr-defined]
        return StorageServer(backend=backend, clock=clock, **kw)  # type: ignore[arg-type]

    make.clock = clock  # type: ignore[attr-defined]
    return make


def upload(server: StorageServer, shnum: int, data: bytes, si: bytes = SI) -> None:
    server.allocate_buckets(
        si, frozenset({shnum}), len(data), renew_secret=R, cancel_secret=C, upload_secret=U
    )
    assert server.write_share_chunk(si, shnum, 0, data, upload_secret=U).complete


def test_allocate_write_read(make_server: Callable[..., StorageServer]) -> None:
    s = make_server()
    res = s.allocate_buckets(
        SI, frozenset({0, 1, 2}), 48, renew_secret=R, cancel_secret=C, upload_secret=U
    )
    assert res.allocated == {0, 1, 2} and res.already_have == set()
    again = s.allocate_buckets(
        SI, frozenset({0, 1, 2}), 48, renew_secret=R, cancel_secret=C, upload_secret=U
    )
    assert again.allocated == set()  # in progress: silently left out (Tahoe 1.20)
    first = s.write_share_chunk(SI, 0, 0, b"a" * 16, upload_secret=U)
    assert [(r.begin, r.end) for r in first.required] == [(16, 48)]
    assert s.list_shares(SI) == set()  # incomplete shares are invisible
    with pytest.raises(NotFound):
        s.read_share_chunk(SI, 0, 0, 10)
    assert s.write_share_chunk(SI, 0, 0, b"a" * 16, upload_secret=U).required  # identical: ok
    with pytest.raises(Conflict):
        s.write_share_chunk(SI, 0, 8, b"b" * 16, upload_secret=U)
    with pytest.raises(Unauthorized):
        s.write_share_chunk(SI, 0, 16, b"a" * 16, upload_secret=b"wrong")
    with pytest.raises(OutOfRange):
        s.write_share_chunk(SI, 0, 40, b"a" * 16, upload_secret=U)
    assert s.write_share_chunk(SI, 0, 16, b"a" * 32, upload_secret=U).complete
    assert s.list_shares(SI) == {0}
    assert s.read_share_chunk(SI, 0, 40, 60) == b"a" * 8
    assert s.read_share_chunk(SI, 0, 48, 10) == b""
    with pytest.raises(NotFound):
        s.write_share_chunk(SI, 0, 0, b"a", upload_secret=U)
    other = s.allocate_buckets(
        SI, frozenset({0, 3}), 48, renew_secret=R, cancel_secret=C, upload_secret=b"other"
    )
    assert other.already_have == {0} and other.allocated == {3}


def test_abort_rules(make_server: Callable[..., StorageServer]) -> None:
    s = make_server()
    s.allocate_buckets(SI, frozenset({0, 1}), 10, renew_secret=R, cancel_secret=C, upload_secret=U)
    with pytest.raises(Unauthorized):
        s.abort_upload(SI, 0, upload_secret=b"x")
    s.abort_upload(SI, 0, upload_secret=U)
    with pytest.raises(NotFound):
        s.abort_upload(SI, 0, upload_secret=U)
    s.write_share_chunk(SI, 1, 0, b"x" * 10, upload_secret=U)
    with pytest.raises(NotAllowed):
        s.abort_upload(SI, 1, upload_secret=U)
    assert s.list_shares(SI) == {1}
    # an aborted share can be allocated again
    assert s.allocate_buckets(
        SI, frozenset({0}), 10, renew_secret=R, cancel_secret=C, upload_secret=U
    ).allocated == {0}


def test_bad_secrets_and_corruption_reports(make_server: Callable[..., StorageServer]) -> None:
    s = make_server()
    with pytest.raises(BadRequest):
        s.allocate_buckets(
            SI, frozenset({0}), 10, renew_secret=b"short", cancel_secret=C, upload_secret=U
        )
    with pytest.raises(NotFound):
        s.advise_corrupt_share(SI, 0, "bad")
    upload(s, 0, b"z" * 10)
    with pytest.raises(BadRequest):
        s.advise_corrupt_share(SI, 0, "")
    s.advise_corrupt_share(SI, 0, "block 3 hash mismatch")
    with pytest.raises(NotFound):
        s.add_or_renew_lease(b"\x01" * 16, renew_secret=R, cancel_secret=C)


def test_leases_are_added_renewed_and_kept(make_server: Callable[..., StorageServer]) -> None:
    s = make_server()
    clock = make_server.clock  # type: ignore[attr-defined]
    upload(s, 0, b"q" * 100)
    leases = s.backend.get_leases(SI, 0)
    assert len(leases) == 1 and leases[0].owner == 0
    assert leases[0].renew == hash_secret(R)
    assert leases[0].expiry == int(clock.now) + LEASE_DURATION
    clock.now += 1000
    s.add_or_renew_lease(SI, renew_secret=R, cancel_secret=C)
    assert [x.expiry for x in s.backend.get_leases(SI, 0)] == [int(clock.now) + LEASE_DURATION]
    s.add_or_renew_lease(SI, renew_secret=b"n" * 32, cancel_secret=C)
    leases = make_server().backend.get_leases(SI, 0)  # a new server on the same storage
    assert [x.owner for x in leases] == [0, 1]
    assert make_server().read_share_chunk(SI, 0, 0, 1000) == b"q" * 100


def test_reserved_space_and_readonly(make_server: Callable[..., StorageServer]) -> None:
    s = make_server(readonly=True)
    assert s.get_version().maximum_immutable_share_size == 0
    assert (
        s.allocate_buckets(
            SI, frozenset({0}), 10, renew_secret=R, cancel_secret=C, upload_secret=U
        ).allocated
        == set()
    )
    # room for one 40 MB share, not two, with margins for other writers on this disk
    free = make_server().backend.free_space()
    s = make_server(reserved_space=free - 60_000_000)
    got = s.allocate_buckets(
        SI, frozenset({0, 1}), 40_000_000, renew_secret=R, cancel_secret=C, upload_secret=U
    )
    assert got.allocated == {0}  # the second does not fit: silently left out


def test_stale_uploads_are_aborted(make_server: Callable[..., StorageServer]) -> None:
    s = make_server()
    s.allocate_buckets(SI, frozenset({0}), 10, renew_secret=R, cancel_secret=C, upload_secret=U)
    make_server.clock.now += 31 * 60  # type: ignore[attr-defined]
    assert s.expire_stale_uploads() == 1
    with pytest.raises(NotFound):
        s.write_share_chunk(SI, 0, 0, b"x", upload_secret=U)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(min_size=1, max_size=3000), st.data())
def test_any_chunking_and_order_yields_the_share(
    make_server: Callable[..., StorageServer], payload: bytes, data: st.DataObject
) -> None:
    # Writing the chunks of a share in any order and any chunking gives a share
    # whose read equals the data, and it is listed only once every byte is in.
    s = make_server()
    si = os.urandom(16)
    cuts = (
        sorted(data.draw(st.sets(st.integers(1, len(payload) - 1), max_size=6)))
        if len(payload) > 1
        else []
    )
    bounds = [0, *cuts, len(payload)]
    chunks = list(itertools.pairwise(bounds))
    order = data.draw(st.permutations(chunks))
    s.allocate_buckets(
        si, frozenset({5}), len(payload), renew_secret=R, cancel_secret=C, upload_secret=U
    )
    for i, (b, e) in enumerate(order):
        assert s.list_shares(si) == set()
        done = s.write_share_chunk(si, 5, b, payload[b:e], upload_secret=U).complete
        assert done == (i == len(order) - 1)
    assert s.read_share_chunk(si, 5, 0, len(payload)) == payload


def test_disk_backend_serves_a_real_tahoe_container(tmp_path: Path) -> None:
    share = (VECTORS / "A.share0").read_bytes()
    lease = (0).to_bytes(4, "big") + hash_secret(R) + hash_secret(C) + (2**31).to_bytes(4, "big")
    container = bytes.fromhex("000000020000027900000002") + share + lease + lease
    d = tmp_path / "storage" / "shares" / "ip" / "ipyccq7zkvlnf22ghlklp2klbq"
    d.mkdir(parents=True)
    (d / "0").write_bytes(container)
    s = StorageServer(backend=DiskBackend(tmp_path / "storage"))
    assert s.list_shares(SI) == {0}
    assert s.read_share_chunk(SI, 0, 0, 10_000) == share
    s.add_or_renew_lease(SI, renew_secret=R, cancel_secret=C)
    assert len(s.backend.get_leases(SI, 0)) == 2  # renewed, not added
    v1 = (
        bytes.fromhex("000000010000027900000001")
        + share
        + (0).to_bytes(4, "big")
        + R
        + C
        + (5).to_bytes(4, "big")
    )
    (d / "1").write_bytes(v1)
    assert s.read_share_chunk(SI, 1, 0, 10_000) == share
    s.add_or_renew_lease(SI, renew_secret=R, cancel_secret=C)
    assert s.backend.get_leases(SI, 1)[0].expiry > 5


def test_incoming_is_discarded_on_restart(tmp_path: Path) -> None:
    s = StorageServer(backend=DiskBackend(tmp_path / "st"))
    s.allocate_buckets(SI, frozenset({0}), 10, renew_secret=R, cancel_secret=C, upload_secret=U)
    s.write_share_chunk(SI, 0, 0, b"12345", upload_secret=U)
    s2 = StorageServer(backend=DiskBackend(tmp_path / "st"))
    assert s2.list_shares(SI) == set()
    assert not any((tmp_path / "st" / "shares" / "incoming").rglob("0"))
