"""The backend conformance suite (``veil.testing.backend_conformance``) on a
real S3 server: SeaweedFS on loopback, 5 MiB parts so large shares span
several of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from veil.adapters.storage.s3 import MIN_PART_SIZE, S3Backend
from veil.adapters.storage.s3_client import S3Settings
from veil.services.storage.backend import Backend
from veil.testing.backend_conformance import CHECKS, OpenBackend

pytestmark = pytest.mark.integration


@pytest.fixture
def open_backend(s3_settings: S3Settings, spool: Path) -> Iterator[OpenBackend]:
    opened: list[S3Backend] = []

    def open_one() -> Backend:
        backend = S3Backend(s3_settings, spool_dir=spool, part_size=MIN_PART_SIZE)
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        backend.close()


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
def test_s3_conformance(open_backend: OpenBackend, check: Callable[[OpenBackend], None]) -> None:
    check(open_backend)


def test_unfinished_multipart_uploads_are_aborted_at_start(
    s3_settings: S3Settings, spool: Path
) -> None:
    first = S3Backend(s3_settings, spool_dir=spool, part_size=MIN_PART_SIZE)
    si = bytes(16)
    incoming = first.create_incoming(si, 0, 3 * MIN_PART_SIZE)
    incoming.write(0, bytes(MIN_PART_SIZE + 1))  # one part sent: S3 holds an upload now
    prefix = s3_settings.key_prefix
    page = first.s3.call("list_multipart_uploads", Prefix=prefix)
    assert len(page.get("Uploads", ())) == 1
    assert first.list_shares(si) == frozenset()  # never listed
    first.close()  # the server stops without finishing or aborting
    second = S3Backend(s3_settings, spool_dir=spool, part_size=MIN_PART_SIZE)
    try:
        assert second.aborted_at_start == 1
        assert not second.s3.call("list_multipart_uploads", Prefix=prefix).get("Uploads")
        assert second.list_shares(si) == frozenset()
    finally:
        second.close()
        incoming.abort()  # only closes the old spool: its S3 client is gone
