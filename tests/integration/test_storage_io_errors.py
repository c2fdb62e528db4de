"""A server whose storage fails says so truthfully: a full disk is 507 (the
client says "full"), any other I/O error is 503 (the client moves on without
calling the server full, and the user is not told to free space)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from veil.adapters.http.storage_server import start_storage_http
from veil.adapters.http.tls import create_identity, server_context, spki_hash_of_pem
from veil.adapters.storage.disk import DiskBackend
from veil.errors import ServerFull, VeilError
from veil.formats.nurl import NURL
from veil.services.storage.server import StorageServer

from .conftest import SWISSNUM, LiveServer

pytestmark = pytest.mark.integration


class FailingDisk(DiskBackend):
    """A disk whose every listing fails with one errno (fault injection)."""

    def __init__(self, root: Path, code: int) -> None:
        super().__init__(root)
        self.code = code

    def list_shares(self, storage_index: bytes) -> frozenset[int]:
        raise OSError(self.code, "injected")


async def _server(root: Path, code: int) -> LiveServer:
    root.mkdir()
    key, cert = root / "tls.key", root / "tls.crt"
    create_identity(key, cert)
    core = StorageServer(backend=FailingDisk(root / "storage", code))
    http = await start_storage_http(
        core, SWISSNUM, host="127.0.0.1", port=0, ssl_context=server_context(key, cert)
    )
    nurl = NURL("pb", spki_hash_of_pem(cert.read_bytes()), "127.0.0.1", http.port, SWISSNUM)
    return LiveServer(core, http, nurl, root)


@pytest.mark.parametrize(
    ("code", "full"), [(errno.ENOSPC, True), (errno.EIO, False), (errno.ECONNRESET, False)]
)
async def test_only_a_full_disk_is_called_full(tmp_path: Path, code: int, full: bool) -> None:
    server = await _server(tmp_path / "s", code)
    client = server.client()
    try:
        with pytest.raises(VeilError) as caught:
            await client.list_shares(b"\x01" * 16)
        assert isinstance(caught.value, ServerFull) is full
        if not full:
            assert "503" in str(caught.value) and "not working" in str(caught.value)
    finally:
        await client.close()
        await server.http.stop()
