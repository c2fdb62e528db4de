"""``[storage] backend = s3`` read from a node directory, without an S3 server:
the keys only from ``private/s3.credentials``, fail-closed refusals in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.adapters.node.files import write_private
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.node.storage_backend import open_storage_backend, s3_settings
from veil.adapters.storage.disk import DiskBackend
from veil.errors import ConfigError

KEYS = "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI\n"


def s3_node(tmp_path: Path, **storage: str) -> NodeDirectory:
    path = tmp_path / "n"
    node = NodeDirectory.create(path, storage=True)
    values = {"backend": "s3", "s3.endpoint": "http://127.0.0.1:1", "s3.bucket": "b", **storage}
    for key, value in values.items():
        node.config.set("storage", key, value)
    node.save_config()
    return NodeDirectory(path)


def test_settings_come_from_tahoe_cfg_and_the_keys_from_private(tmp_path: Path) -> None:
    node = s3_node(tmp_path, **{"s3.prefix": "/server-1/", "s3.region": "eu-central-1"})
    with pytest.raises(ConfigError, match=r"s3\.credentials is missing"):
        s3_settings(node)
    write_private(node.private / "s3.credentials", KEYS)
    settings = s3_settings(node)
    assert (settings.bucket, settings.region, settings.key_prefix) == (
        "b",
        "eu-central-1",
        "server-1/",
    )
    assert settings.credentials.access_key_id == "AKIDEXAMPLE"
    assert "wJalrXUtnFEMI" not in repr(settings)  # the secret never shows


def test_a_missing_bucket_is_refused(tmp_path: Path) -> None:
    node = s3_node(tmp_path, **{"s3.bucket": ""})
    with pytest.raises(ConfigError, match=r"needs s3\.bucket"):
        open_storage_backend(node)


def test_disk_stays_the_default(tmp_path: Path) -> None:
    node = NodeDirectory.create(tmp_path / "n", storage=True)
    assert isinstance(open_storage_backend(node), DiskBackend)


@pytest.mark.parametrize("endpoint", ["https://s3.example.net", "http://192.0.2.5:9000", ""])
def test_a_node_hiding_its_ip_refuses_a_store_elsewhere(tmp_path: Path, endpoint: str) -> None:
    node = s3_node(tmp_path, **{"s3.endpoint": endpoint})
    node.config.set("node", "reveal-IP-address", "false")
    node.save_config()
    write_private(node.private / "s3.credentials", KEYS)
    with pytest.raises(ConfigError, match="would see this server's IP address"):
        s3_settings(NodeDirectory(node.path))


def test_a_node_hiding_its_ip_may_use_a_store_on_this_machine(tmp_path: Path) -> None:
    node = s3_node(tmp_path, **{"s3.endpoint": "http://127.0.0.1:8333"})
    node.config.set("node", "reveal-IP-address", "false")
    node.save_config()
    write_private(node.private / "s3.credentials", KEYS)
    assert s3_settings(NodeDirectory(node.path)).endpoint == "http://127.0.0.1:8333"
