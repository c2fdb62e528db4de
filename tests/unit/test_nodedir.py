"""Node directories: creation, secrets, settings and clear configuration errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from veil.adapters.node.nodedir import NodeDirectory, parse_size
from veil.errors import ConfigError, UsageError
from veil.formats.params import EncodingParameters


def test_create_makes_private_secrets_once(tmp_path: Path) -> None:
    node = NodeDirectory.create(tmp_path / "n", params=EncodingParameters(2, 3, 4))
    for name in ("node.privkey", "convergence", "secret", "storage.swissnum"):
        mode = (tmp_path / "n" / "private" / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, name
    assert len(node.convergence_secret()) == 32 and len(node.lease_secret()) == 32
    assert node.node_id().startswith("v0-") and len(node.node_id()) == 55
    assert node.encoding_parameters() == EncodingParameters(2, 3, 4)
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        NodeDirectory.create(tmp_path / "n")
    reopened = NodeDirectory(tmp_path / "n")
    assert reopened.convergence_secret() == node.convergence_secret()


def test_bad_settings_name_file_and_key(tmp_path: Path) -> None:
    node = NodeDirectory.create(tmp_path / "n")
    cfg = node.config_path.read_text().replace("shares.needed = 3", "shares.needed = three")
    node.config_path.write_text(cfg)
    with pytest.raises(ConfigError, match=r"tahoe.cfg: \[client\] shares.needed = 'three'"):
        NodeDirectory(tmp_path / "n")
    cfg = cfg.replace("shares.needed = three", "shares.needed = 3")
    node.config_path.write_text(cfg.replace("readonly = false", "readonly = maybe"))
    with pytest.raises(ConfigError, match="readonly = 'maybe' must be true or false"):
        NodeDirectory(tmp_path / "n")
    with pytest.raises(ConfigError, match="not a veil node directory"):
        NodeDirectory(tmp_path / "missing")
    with pytest.raises(UsageError):
        EncodingParameters(3, 11, 10)


@pytest.mark.parametrize(
    "text,problem",
    [
        ("storage: [", "not valid YAML"),
        ("- 1\n", "top-level 'storage:'"),
        ("storage:\n  v0-x: {}\n", "no 'ann:'"),
    ],
)
def test_bad_servers_yaml(tmp_path: Path, text: str, problem: str) -> None:
    node = NodeDirectory.create(tmp_path / "n")
    (tmp_path / "n" / "private" / "servers.yaml").write_text(text)
    with pytest.raises(ConfigError, match=problem):
        node.servers()


def test_sizes() -> None:
    assert parse_size("1G", key="k") == 10**9
    assert parse_size("500M", key="k") == 5 * 10**8
    assert parse_size("0", key="k") == 0
    with pytest.raises(ConfigError, match="not a size"):
        parse_size("lots", key="reserved_space")


def test_unusable_hints_are_skipped_or_refused() -> None:
    from veil.adapters.net.tcp import TcpProvider
    from veil.adapters.node.client_session import storage_client_for

    spki = "A" * 43
    onion = f"pb+tor://{spki}@abcdefghijklmnop.onion:443/swiss#v=1"
    tcp = f"pb://{spki}@127.0.0.1:4000/swiss#v=1"
    client = storage_client_for(
        "v0-x", {"anonymous-storage-NURLs": [onion, "junk", tcp]}, TcpProvider()
    )
    assert client.nurl.host == "127.0.0.1"
    with pytest.raises(ConfigError, match="only as an onion service"):
        storage_client_for("v0-x", {"anonymous-storage-NURLs": [onion]}, TcpProvider())
    with pytest.raises(ConfigError, match="no anonymous-storage-NURLs"):
        storage_client_for("v0-x", {"anonymous-storage-FURL": "pb://x@tcp:h:1/s"}, TcpProvider())
