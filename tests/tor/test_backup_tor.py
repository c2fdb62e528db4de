"""A first backup and a full restore of 200 small files over the private Tor
network of the tests: an anonymous client, onion servers, an onion
introducer (the figures are printed)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .privnet import TorNetwork
from .veil_nodes import VeilNodes, veil

pytestmark = pytest.mark.tor


@pytest.fixture(scope="module")
def onion_grid(
    tor_network: TorNetwork, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VeilNodes, str, dict[str, str]]]:
    service, user = tor_network.clients[1], tor_network.clients[0]
    server_env = {
        "TOR_SOCKS_PORT": str(service.socks_port),
        "TOR_CONTROL_PORT": str(service.control_port),
    }
    nodes = VeilNodes(tmp_path_factory.mktemp("veil-tor-backup"))
    try:
        introducer = nodes.introducer(
            "introducer",
            env={"TOR_SOCKS_IPC_PATH": service.socks_path},
            control=f"unix:{service.control_path}",
        )
        for i in range(4):
            nodes.server(f"onion{i}", listen="tor", env=server_env, introducer=introducer)
        yield nodes, introducer, {"TOR_SOCKS_PORT": str(user.socks_port)}
    finally:
        nodes.stop()


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".veil")
    }


def test_backup_and_restore_200_small_files_over_tor(
    onion_grid: tuple[VeilNodes, str, dict[str, str]], tmp_path: Path
) -> None:
    nodes, introducer, env = onion_grid
    client = nodes.client("anon", hide_ip=True, introducer=introducer)
    nodes.wait_connected(client, env, 4)
    src = tmp_path / "src"
    for i in range(200):
        d = src / f"d{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(os.urandom(4096))
    veil("-d", str(client), "create-alias", "tahoe", env=env)
    t0 = time.monotonic()
    veil("-d", str(client), "backup", str(src), "tahoe:b", env=env)
    backup_s = time.monotonic() - t0
    t0 = time.monotonic()
    veil("-d", str(client), "restore", "tahoe:b", str(tmp_path / "out"), env=env)
    restore_s = time.monotonic() - t0
    assert digest_tree(tmp_path / "out") == digest_tree(src)
    print(
        f"\nTor figures: 200 x 4 KiB first backup {backup_s:.1f} s, "
        f"full restore {restore_s:.1f} s (4 onion servers, 2-of-4, CLI)"
    )
