"""A veil storage server on S3 (SeaweedFS on loopback) serving a veil client and
a live Tahoe-LAFS 1.20 client; the node's configuration refusing bad S3 setups."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.tahoe_harness import TahoeNode, _http, tahoe_executable
from tests.s3.s3_node import VEIL, S3StorageNode, client_node, credentials_text, use_s3
from veil.adapters.node.client_session import open_client
from veil.adapters.node.files import write_private
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.node.storage_backend import open_storage_backend
from veil.adapters.storage.s3 import S3Backend
from veil.adapters.storage.s3_client import S3Connection, S3Settings
from veil.errors import ConfigError
from veil.formats.caps import CHKReadCap, parse_read_cap
from veil.testing.seaweedfs import SeaweedFS

pytestmark = pytest.mark.integration
ZERO = b"\x00" * 32


@pytest.fixture(scope="module")
def s3_server_node(
    seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[S3StorageNode, S3Settings]]:
    settings = seaweedfs.settings(f"node-{os.urandom(4).hex()}")
    node = S3StorageNode.create(tmp_path_factory.mktemp("s3node") / "server", settings)
    node.start()
    try:
        yield node, settings
    finally:
        node.stop()


async def veil_put(client_dir: Path, data: bytes) -> str:
    async with open_client(client_dir) as c:
        return (await c.uploader().upload_bytes(data)).cap.to_string()


async def veil_get(client_dir: Path, cap: str) -> bytes:
    async with open_client(client_dir) as c:
        return await c.downloader().download_bytes(parse_read_cap(cap))


def share_keys(settings: S3Settings, kind: str = "shares") -> list[tuple[str, int]]:
    connection = S3Connection(settings)
    try:
        return connection.list_keys(settings.key_prefix + kind + "/")
    finally:
        connection.close()


def test_veil_client_stores_and_reads_through_a_server_on_s3(
    s3_server_node: tuple[S3StorageNode, S3Settings], tmp_path: Path
) -> None:
    node, settings = s3_server_node
    client = client_node(tmp_path / "client", [node])
    sizes = [1000, 1_000_000, 20_000_000]  # the last one's shares span S3 parts
    blobs = {size: os.urandom(size) for size in sizes}
    caps = {size: asyncio.run(veil_put(client, data)) for size, data in blobs.items()}
    for size, cap in caps.items():
        assert asyncio.run(veil_get(client, cap)) == blobs[size]
    big = parse_read_cap(caps[20_000_000])
    assert isinstance(big, CHKReadCap)
    backend = S3Backend(settings)
    try:
        assert backend.list_shares(big.storage_index) == {0, 1, 2}  # all three on one server
        assert all(len(backend.get_leases(big.storage_index, n)) == 1 for n in range(3))
    finally:
        backend.close()
    assert not list((node.path / "storage" / "s3-spool").iterdir())  # nothing left spooled
    assert not list((node.path / "storage").glob("shares"))  # no share on the server's disk


def test_tahoe_client_stores_and_reads_through_a_server_on_s3(
    s3_server_node: tuple[S3StorageNode, S3Settings], tmp_path: Path
) -> None:
    node, _ = s3_server_node
    tahoe = TahoeNode.create_client(
        tahoe_executable(),
        tmp_path / "tahoe",
        needed=2,
        happy=1,
        total=3,
        servers={node.server_id: node.ann},
        convergence=ZERO,
    )
    tahoe.start()
    try:
        tahoe.wait_ready(connected_servers=1)
        data = os.urandom(3 * 1048576)
        cap = tahoe.put(data)
        assert tahoe.get(cap) == data
        assert tahoe.check(cap, verify=True)["results"]["healthy"] is True
        veil = client_node(tmp_path / "veil", [node])
        assert asyncio.run(veil_get(veil, cap)) == data  # veil reads what Tahoe stored
        mutable = _http("PUT", f"{tahoe.url}/uri?format=SDMF", b"first").decode().strip()
        _http("PUT", f"{tahoe.url}/uri/{mutable}", b"second version")  # test-and-write
        assert tahoe.get(mutable) == b"second version"
        mine = asyncio.run(veil_put(veil, os.urandom(500_000)))
        assert len(tahoe.get(mine)) == 500_000  # Tahoe reads what veil stored
    finally:
        tahoe.stop()


def _node(tmp_path: Path, settings: S3Settings) -> NodeDirectory:
    path = tmp_path / "n"
    NodeDirectory.create(path, storage=True)
    use_s3(path, settings)
    return NodeDirectory(path)


def test_bad_s3_settings_stop_start_up_with_one_line(
    s3_settings: S3Settings, tmp_path: Path
) -> None:
    node = _node(tmp_path, s3_settings)
    credentials = node.private / "s3.credentials"
    credentials.chmod(0o644)
    with pytest.raises(ConfigError, match="can be read by other users"):
        open_storage_backend(node)
    write_private(credentials, "[default]\naws_access_key_id = x\n")
    with pytest.raises(ConfigError, match="no \\[default\\] aws_access_key_id"):
        open_storage_backend(node)
    wrong = S3Settings(
        s3_settings.endpoint, s3_settings.bucket, "", "us-east-1", s3_settings.credentials
    )
    write_private(
        credentials,
        credentials_text(wrong).replace("aws_secret_access_key = ", "aws_secret_access_key = x"),
    )
    with pytest.raises(ConfigError, match="cannot use S3 bucket") as wrong_key:
        open_storage_backend(node)
    assert s3_settings.credentials.secret_access_key not in str(wrong_key.value)
    write_private(credentials, credentials_text(s3_settings))
    node.config.set("storage", "s3.bucket", "no-such-bucket")
    node.save_config()
    with pytest.raises(ConfigError, match="does not exist"):
        open_storage_backend(NodeDirectory(node.path))
    # the real command: one line, exit status 1, no traceback, no key
    node.config.set("storage", "s3.endpoint", "http://127.0.0.1:1")
    node.save_config()
    r = subprocess.run([*VEIL, "run", str(node.path)], capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 1 and "cannot use S3" in err and "Traceback" not in err, err
    assert s3_settings.credentials.secret_access_key not in err
