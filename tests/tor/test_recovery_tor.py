"""The anonymous traveller over the private Tor network of the tests: onion
servers and an onion introducer; an anonymous client backs up three
directories and makes a blob with ``--friends 2-of-3``; the node directory
and sources are wiped; in a new HOME ``veil recovery restore`` builds a
hide-ip node from the blob and brings everything back. The restore runs
as the strictest of the other leak tests does: in a network namespace with
no network at all, Tor's unix SOCKS socket its only way out, so nothing can
leak by construction. Without that socket, the restore refuses with one
line and writes nothing, not even the node directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_backup_inprocess import expected, picture

from .privnet import TorNetwork
from .veil_nodes import VEIL, VeilNodes, veil

pytestmark = pytest.mark.tor
PASSPHRASE = "granite orchid velvet harbor lantern cobalt meadow"
TASKS = ("Documents", "Photos", "Mail")


@pytest.fixture(scope="module")
def onion_grid(
    tor_network: TorNetwork, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VeilNodes, str, dict[str, str]]]:
    service, user = tor_network.clients[1], tor_network.clients[0]
    server_env = {
        "TOR_SOCKS_PORT": str(service.socks_port),
        "TOR_CONTROL_PORT": str(service.control_port),
    }
    nodes = VeilNodes(tmp_path_factory.mktemp("veil-tor-recovery"))
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


def tree(src: Path, name: str) -> None:
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "data").write_bytes(os.urandom(20_000))
    (src / "note").write_text(name)
    os.chmod(src / "note", 0o600)
    os.symlink("sub/data", src / "link")
    os.utime(src / "note", ns=(1_500_000_000_123_456_789,) * 2)


def test_anonymous_traveller(
    onion_grid: tuple[VeilNodes, str, dict[str, str]],
    tor_network: TorNetwork,
    tmp_path: Path,
) -> None:
    nodes, introducer, tor_env = onion_grid
    home1, home2, carry = tmp_path / "laptop", tmp_path / "tails", tmp_path / "friends"
    home1.mkdir()
    env1 = {**tor_env, "HOME": str(home1)}
    client = nodes.client("anon", hide_ip=True, introducer=introducer)
    nodes.wait_connected(client, env1, 4)
    veil("-d", str(client), "create-alias", "backups", env=env1)
    pictures = {}
    for name in TASKS:
        tree(home1 / name, name)
        veil("-d", str(client), "backup", str(home1 / name), f"backups:{name.lower()}", env=env1)
        pictures[name] = expected(home1 / name)
    carry.mkdir()
    made = subprocess.run(
        [
            *VEIL,
            "-d",
            str(client),
            "recovery",
            "create",
            str(carry / "blob"),
            "--friends",
            "2-of-3",
            "--passphrase-fd",
            "0",
        ],
        input=PASSPHRASE,
        env={**os.environ, **env1},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert made.returncode == 0, made.stderr
    shutil.rmtree(client)  # the wipe
    shutil.rmtree(home1)
    home2.mkdir()
    restore = [
        *VEIL,
        "recovery",
        "restore",
        str(carry / "blob"),
        "--share",
        str(carry / "blob.share2"),
        "--share",
        str(carry / "blob.share3"),
        "--passphrase-fd",
        "0",
    ]
    # Both runs are in a network namespace of their own with no network at all
    # (``unshare --net``): the only way out is Tor's unix socket, when given.
    base = {k: v for k, v in os.environ.items() if not k.startswith("TOR_")}
    base["HOME"] = str(home2)
    no_tor = {**base, "TOR_SOCKS_IPC_PATH": str(tmp_path / "no-tor.sock")}
    refused = subprocess.run(
        ["unshare", "--net", *restore],
        input=PASSPHRASE,
        env=no_tor,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.startswith("veil: error: ")
    assert list(home2.iterdir()) == []  # nothing written, not even the node directory
    with_tor = {**base, "TOR_SOCKS_IPC_PATH": tor_network.clients[0].socks_path}
    started = time.monotonic()
    done = subprocess.run(
        ["unshare", "--net", *restore],
        input=PASSPHRASE,
        env=with_tor,
        capture_output=True,
        text=True,
        timeout=300,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    print(f"\nanonymous whole restore over Tor: {took:.1f}s (3 backups, 4 onion servers)")
    for name in TASKS:
        assert picture(home2 / name) == pictures[name], name
    cfg = (home2 / ".veil" / "tahoe.cfg").read_text().lower()
    assert "reveal-ip-address = false" in cfg and "tcp = tor" in cfg
    assert "URI:" not in done.stdout + done.stderr and PASSPHRASE not in done.stdout + done.stderr
