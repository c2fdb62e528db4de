"""veil's batch extension: wire format and the server side, with the standard calls' guarantees."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.adapters.storage import durable
from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.memory import MemoryBackend
from veil.errors import BadRequest, RemoteError
from veil.formats import wire_batch as wb
from veil.formats.wire import dumps
from veil.services.storage.batch import run_read_batch, run_upload_batch
from veil.services.storage.server import StorageServer

R, C, U = b"r" * 32, b"c" * 32, b"u" * 32


def item(si: bytes, shares: dict[int, bytes], upload: bytes = U) -> wb.BatchUpload:
    size = len(next(iter(shares.values())))
    return wb.BatchUpload(si, size, R, C, upload, shares)


@pytest.fixture(params=["memory", "disk"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> StorageServer:
    backend = MemoryBackend() if request.param == "memory" else DiskBackend(tmp_path / "st")
    return StorageServer(backend=backend)


def test_offers_batch_only_in_a_veil_application_version() -> None:
    assert wb.offers_batch(b"veil/0.3.0 +batch-v1")
    assert not wb.offers_batch(b"veil/0.2.0")
    assert not wb.offers_batch(b"tahoe-lafs/1.20.0")
    assert not wb.offers_batch(b"tahoe-lafs/1.20.0 +batch-v1")
    assert not wb.offers_batch(b"")


def test_upload_request_round_trip_and_secrets_not_in_repr() -> None:
    items = [item(os.urandom(16), {0: b"a" * 10, 3: b"b" * 10}), item(os.urandom(16), {1: b"c"})]
    back = wb.decode_upload_request(wb.encode_upload_request(items))
    assert back == items
    assert "rrrr" not in repr(back[0]) and "uuuu" not in repr(back[0])


@pytest.mark.parametrize(
    "body",
    [
        [],  # empty batch
        [{"storage-index": b"x" * 15}],
        [
            {
                "storage-index": b"s" * 16,
                "allocated-size": 4,
                "renew-secret": R,
                "cancel-secret": C,
                "upload-secret": U,
                "shares": {0: b"abc"},  # not the allocated size
            }
        ],
        [
            {
                "storage-index": b"s" * 16,
                "allocated-size": wb.MAX_BATCH_SHARE + 1,
                "renew-secret": R,
                "cancel-secret": C,
                "upload-secret": U,
                "shares": {0: b"a" * (wb.MAX_BATCH_SHARE + 1)},
            }
        ],
        [
            {
                "storage-index": b"s" * 16,
                "allocated-size": 1,
                "renew-secret": R[:31],
                "cancel-secret": C,
                "upload-secret": U,
                "shares": {0: b"a"},
            }
        ],
        [
            {
                "storage-index": b"s" * 16,
                "allocated-size": 1,
                "renew-secret": R,
                "cancel-secret": C,
                "upload-secret": U,
                "shares": {256: b"a"},
            }
        ],
    ],
)
def test_malformed_upload_requests_are_bad_requests(body: object) -> None:
    with pytest.raises(BadRequest):
        wb.decode_upload_request(dumps(body))


def test_too_many_items_and_too_large_bodies_are_refused() -> None:
    many = [item(os.urandom(16), {0: b"a"}) for _ in range(wb.MAX_BATCH_ITEMS + 1)]
    with pytest.raises(BadRequest):
        wb.decode_upload_request(wb.encode_upload_request(many))
    with pytest.raises(BadRequest):
        wb.decode_upload_request(b"\x80" * (wb.MAX_BATCH_BODY + 1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_only_protocol_errors(data: bytes) -> None:
    for decode, error in (
        (wb.decode_upload_request, BadRequest),
        (wb.decode_read_request, BadRequest),
        (lambda d: wb.decode_upload_answer(d, 1), RemoteError),
        (lambda d: wb.decode_read_answer(d, 1), RemoteError),
    ):
        try:
            decode(data)
        except error:
            pass


def test_hostile_answers_are_remote_errors() -> None:
    for answer in (
        [],
        [{"status": 200, "reason": "ok"}],
        [{"already-have": [0], "written": frozenset()}],
        [{"x": 1}],
    ):
        with pytest.raises(RemoteError):
            wb.decode_upload_answer(dumps(answer), 1)
    with pytest.raises(RemoteError):
        wb.decode_read_answer(dumps([{0: b"a" * (wb.MAX_BATCH_SHARE + 1)}]), 1)


def test_a_batch_writes_shares_the_standard_calls_read(server: StorageServer) -> None:
    sis = [os.urandom(16) for _ in range(5)]
    items = [item(si, {s: os.urandom(100) for s in (0, 1, 2)}) for si in sis]
    results = run_upload_batch(server, items)
    assert all(r.written == {0, 1, 2} and not r.already_have for r in results)
    for it in items:
        assert server.list_shares(it.storage_index) == {0, 1, 2}
        for shnum, data in it.shares.items():
            assert server.read_share_chunk(it.storage_index, shnum, 0, 1000) == data
    # the lease is the standard one: the same secrets renew it, other secrets add one
    server.add_or_renew_lease(sis[0], renew_secret=R, cancel_secret=C)
    again = run_upload_batch(server, items[:1])
    assert again[0].already_have == {0, 1, 2} and not again[0].written


def test_an_item_refused_as_a_whole_leaves_the_others(tmp_path: Path) -> None:
    ro = StorageServer(backend=MemoryBackend(), readonly=True)
    si = os.urandom(16)
    res = run_upload_batch(ro, [item(si, {0: b"x" * 10})])
    assert not res[0].written and ro.list_shares(si) == set()  # as allocate: nothing allocated
    server = StorageServer(backend=MemoryBackend())
    bad = wb.BatchUpload(os.urandom(16), 10, R, C, b"", {0: b"x" * 10})  # empty upload secret
    good = item(os.urandom(16), {0: b"y" * 10})
    res = run_upload_batch(server, [bad, good])
    assert res[0].refused and res[0].status == 400
    assert res[1].written == {0}


def test_a_share_being_uploaded_by_someone_else_is_neither_written_nor_claimed(
    server: StorageServer,
) -> None:
    si = os.urandom(16)
    server.allocate_buckets(
        si, frozenset({0}), 10, renew_secret=R, cancel_secret=C, upload_secret=b"other" * 7
    )
    res = run_upload_batch(server, [item(si, {0: b"z" * 10, 1: b"w" * 10})])
    assert res[0].written == {1} and res[0].already_have == frozenset()
    assert server.list_shares(si) == {1}


def test_no_space_refuses_items_and_writes_nothing() -> None:
    server = StorageServer(backend=MemoryBackend(), reserved_space=2**62)
    si = os.urandom(16)
    res = run_upload_batch(server, [item(si, {0: b"a" * 100})])
    assert not res[0].written and server.list_shares(si) == set()


def test_read_batch_returns_small_shares_whole_and_lengths_of_large(server: StorageServer) -> None:
    small, large, absent = os.urandom(16), os.urandom(16), os.urandom(16)
    run_upload_batch(server, [item(small, {0: b"s" * 50, 4: b"t" * 50})])
    big = os.urandom(wb.MAX_BATCH_SHARE + 1)
    server.allocate_buckets(
        large, frozenset({2}), len(big), renew_secret=R, cancel_secret=C, upload_secret=U
    )
    assert server.write_share_chunk(large, 2, 0, big, upload_secret=U).complete
    answer = run_read_batch(server, [small, large, absent])
    assert answer == [{0: b"s" * 50, 4: b"t" * 50}, {2: len(big)}, {}]
    wire = wb.decode_read_answer(wb.encode_read_answer(answer), 3)
    assert wire == answer


def test_a_batch_on_disk_is_flushed_once_at_its_end_every_file_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        thread = threading.current_thread().name
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), thread))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", str(dst), ""))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    backend = DiskBackend(tmp_path / "st")
    server = StorageServer(backend=backend)
    for count, threaded in ((1, False), (3, True)):  # 2 shares (one by one), 6 (in threads)
        assert (2 * count >= durable.PARALLEL_FROM) == threaded
        events.clear()
        items = [item(os.urandom(16), {s: os.urandom(100) for s in (0, 5)}) for _ in range(count)]
        assert all(r.written == {0, 5} for r in run_upload_batch(server, items))
        finals = {str(backend.share_dir(i.storage_index) / str(s)) for i in items for s in i.shares}
        dirs = {str(backend.share_dir(i.storage_index)) for i in items}
        kinds = [k for k, _, _ in events]
        assert kinds == ["replace"] * 2 * count + ["fsync"] * 3 * count  # renames, then flushes
        flushed = [p for k, p, _ in events if k == "fsync"]
        assert set(flushed[: 2 * count]) == finals and set(flushed[2 * count :]) == dirs
        threads = [t for k, _, t in events if k == "fsync"][: 2 * count]  # the files'
        assert all(t.startswith("veil-fsync") for t in threads) == threaded
    assert backend.pending_sync() is None
    # the standard calls still flush each share as it completes
    events.clear()
    si = os.urandom(16)
    server.allocate_buckets(si, frozenset({1}), 4, renew_secret=R, cancel_secret=C, upload_secret=U)
    server.write_share_chunk(si, 1, 0, b"data", upload_secret=U)
    assert [k for k, _, _ in events] == ["fsync", "replace", "fsync"]


def test_a_failed_fsync_in_a_batch_fails_its_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync
    backend = DiskBackend(tmp_path / "st")
    many = [item(os.urandom(16), {s: os.urandom(100) for s in (0, 5)}) for _ in range(3)]
    broken = str(backend.share_dir(many[1].storage_index) / "5")
    seen: list[str] = []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        seen.append(path)
        if path == broken:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        run_upload_batch(StorageServer(backend=backend), many)
    assert len(seen) == 6 and broken in seen  # every file was tried; no directory after it


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=16, max_size=16),
            st.dictionaries(st.integers(0, 255), st.binary(max_size=300), min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(
        st.one_of(
            st.tuples(st.frozensets(st.integers(0, 255)), st.frozensets(st.integers(0, 255))),
            st.tuples(st.integers(400, 599), st.text(max_size=40)),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_the_direct_encoders_give_the_bytes_of_the_generic_codec(
    raw_items: list[tuple[bytes, dict[int, bytes]]], raw_results: list[tuple[object, object]]
) -> None:
    items = [wb.BatchUpload(si, 7, R, C, U, shares) for si, shares in raw_items]
    generic = [
        {
            "storage-index": i.storage_index,
            "allocated-size": i.allocated_size,
            "renew-secret": i.renew_secret,
            "cancel-secret": i.cancel_secret,
            "upload-secret": i.upload_secret,
            "shares": dict(sorted(i.shares.items())),
        }
        for i in items
    ]
    assert wb.encode_upload_request(items) == dumps(generic)
    results = [
        wb.BatchUploadResult(status=a, reason=b)  # type: ignore[arg-type]
        if isinstance(a, int)
        else wb.BatchUploadResult(a, b)  # type: ignore[arg-type]
        for a, b in raw_results
    ]
    answer = [
        {"status": r.status, "reason": r.reason}
        if r.refused
        else {"already-have": r.already_have, "written": r.written}
        for r in results
    ]
    assert wb.encode_upload_answer(results) == dumps(answer)
    assert wb.decode_upload_answer(dumps(answer), len(results)) == [
        r if r.refused else wb.BatchUploadResult(r.already_have, r.written) for r in results
    ]
