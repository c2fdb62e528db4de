"""The storage server's mutable slots (test-and-write, reads, leases), run on the
disk backend and on the in-memory fake, which must behave the same; and the
HTTP route as Tahoe 1.20 answered it (the digest's observed exchange)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.memory import MemoryBackend
from veil.errors import BadRequest, NotFound, RemoteError, Unauthorized
from veil.formats import wire_mutable
from veil.formats.mutable_container import DATA_OFFSET, MAGIC_V2, parse_header
from veil.formats.storage_types import TestWrite
from veil.services.storage.backend import Backend
from veil.services.storage.server import StorageServer

SI = bytes(range(16))
WE, OTHER_WE = b"w" * 32, b"x" * 32
RENEW, CANCEL = b"r" * 32, b"c" * 32
NODEID = b"n" * 20


@pytest.fixture(params=["disk", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield DiskBackend(tmp_path / "storage") if request.param == "disk" else MemoryBackend()


def rtw(
    server: StorageServer,
    vectors: dict[int, TestWrite],
    reads: list[tuple[int, int]] | None = None,
    we: bytes = WE,
) -> tuple[bool, dict[int, list[bytes]]]:
    r = server.mutable_read_test_write(
        SI, vectors, reads or [], write_enabler=we, renew_secret=RENEW, cancel_secret=CANCEL
    )
    return r.success, r.data


def test_the_exchange_tahoe_showed(backend: Backend) -> None:
    server = StorageServer(backend=backend, nodeid=NODEID)
    create = {0: TestWrite(((0, 1, b""),), ((0, b"hello world"),))}
    assert rtw(server, create) == (True, {})
    assert rtw(server, create, [(0, 5)]) == (False, {0: [b"hello"]})  # it exists now
    # Tahoe answers an empty read vector with an empty list per existing share
    assert rtw(server, {0: TestWrite(writes=((20, b"!"),))}) == (True, {0: []})
    assert server.mutable_read(SI, 0, 0, 100) == b"hello world" + bytes(9) + b"!"
    assert rtw(server, {0: TestWrite(new_length=3)}) == (True, {0: []})
    assert server.mutable_read(SI, 0, 0, 100) == b"hel"
    assert server.mutable_list_shares(SI) == {0}
    assert server.backend.list_shares(SI) == frozenset()  # not an immutable share


def test_write_enabler_guards_every_share(backend: Backend) -> None:
    server = StorageServer(backend=backend, nodeid=NODEID)
    rtw(server, {0: TestWrite(writes=((0, b"a"),)), 1: TestWrite(writes=((0, b"b"),))})
    with pytest.raises(Unauthorized):
        rtw(server, {2: TestWrite(writes=((0, b"c"),))}, we=OTHER_WE)
    assert server.mutable_list_shares(SI) == {0, 1}  # nothing written


def test_a_failed_test_writes_nothing_and_reads_all_shares(backend: Backend) -> None:
    server = StorageServer(backend=backend, nodeid=NODEID)
    rtw(server, {0: TestWrite(writes=((0, b"seq1"),)), 1: TestWrite(writes=((0, b"seq1"),))})
    ok, data = rtw(
        server,
        {0: TestWrite(((0, 4, b"seq0"),), ((0, b"seq2"),)), 1: TestWrite(writes=((0, b"X"),))},
        [(0, 4)],
    )
    assert not ok and data == {0: [b"seq1"], 1: [b"seq1"]}
    assert server.mutable_read(SI, 1, 0, 4) == b"seq1"


def test_delete_leases_and_errors(backend: Backend) -> None:
    server = StorageServer(backend=backend, nodeid=NODEID)
    rtw(server, {0: TestWrite(writes=((0, b"data"),)), 1: TestWrite(writes=((0, b"more"),))})
    raw = backend.read_slot(SI, 0, 0, DATA_OFFSET)
    header = parse_header(raw)
    assert raw.startswith(MAGIC_V2) and header.nodeid == NODEID and header.write_enabler == WE
    assert len(header.leases) == 1 and header.leases[0].matches_renew(RENEW)
    server.add_or_renew_lease(SI, renew_secret=b"R" * 32, cancel_secret=b"C" * 32)
    assert len(parse_header(backend.read_slot(SI, 0, 0, DATA_OFFSET)).leases) == 2
    rtw(server, {0: TestWrite(new_length=0)})
    assert server.mutable_list_shares(SI) == {1}
    with pytest.raises(NotFound):
        server.mutable_read(SI, 0, 0, 1)
    with pytest.raises(BadRequest):
        rtw(server, {0: TestWrite(tests=((0, 1, b""),) * 31)})


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3000), st.binary(min_size=1, max_size=600)),
        max_size=8,
    ),
    st.one_of(st.none(), st.integers(0, 4000)),
)
def test_writes_match_a_bytearray_model(
    writes: list[tuple[int, int, bytes]], new_length: int | None
) -> None:
    server = StorageServer(backend=MemoryBackend(), nodeid=NODEID)
    model: dict[int, bytearray] = {}
    for sh, offset, data in writes:
        rtw(server, {sh: TestWrite(writes=((offset, data),))})
        m = model.setdefault(sh, bytearray())
        m.extend(bytes(max(0, offset + len(data) - len(m))))
        m[offset : offset + len(data)] = data
    if new_length and model:
        sh = next(iter(model))
        rtw(server, {sh: TestWrite(new_length=new_length)})
        del model[sh][new_length:]
    for sh, m in model.items():
        assert server.mutable_read(SI, sh, 0, 10_000) == bytes(m)


def test_wire_round_trip_and_refusals() -> None:
    vectors = {3: TestWrite(((0, 41, b"x" * 41),), ((0, b"data"), (100, b"more")), None)}
    body = wire_mutable.encode_rtw_request(vectors, [(0, 57)])
    assert wire_mutable.decode_rtw_request(body) == (vectors, [(0, 57)])
    for bad in (b"\xa0", os.urandom(40), body[:-1]):
        with pytest.raises(BadRequest):
            wire_mutable.decode_rtw_request(bad)
    from veil.formats.storage_types import TestWriteResult

    answer = TestWriteResult(False, {0: [b"abc"]})
    assert wire_mutable.decode_rtw_result(wire_mutable.encode_rtw_result(answer)) == answer
    with pytest.raises(RemoteError):
        wire_mutable.decode_rtw_result(b"\xa1\x67success\xf5")
