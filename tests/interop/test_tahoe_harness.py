"""The live Tahoe-LAFS 1.20 harness itself: a real grid stores, returns and verifies
files, yields announcements veil can use, reproduces known caps, and stops cleanly."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml

from veil.formats.nurl import parse_furl, parse_nurl

from .tahoe_harness import (
    TahoeGrid,
    TahoeHarnessError,
    TahoeNode,
    announcement_for,
    storage_announcement,
)

pytestmark = pytest.mark.integration

ZERO32 = b"\x00" * 32
CAP_A56 = (
    "URI:CHK:3ider2oyrjylu3zxnxcaf3ufny:"
    "cz26at4njp7fajpj72krpfml4hewlqyeucaxp32t4c4eyjdfbp3q:3:10:56"
)
# test-vectors.md case D: bytes(range(256)) * 40, zero secret, 3-of-10, max segment 4096
CAP_D = (
    "URI:CHK:tfh4fwlzm666d2paqos3dir4c4:"
    "45eveoekq55kt2dtqt5zmtorjqnsodc25klvvo3mfr3vyksfu5na:3:10:10240"
)


@pytest.mark.parametrize("size", [56, 100 * 1024, 3 * 1024 * 1024])
def test_put_get_and_verify(small_tahoe_grid: TahoeGrid, size: int) -> None:
    client = small_tahoe_grid.clients[0]
    data = os.urandom(size)
    cap = client.put(data)
    assert cap.startswith("URI:CHK:") and cap.endswith(f":2:3:{size}")
    assert client.get(cap) == data
    # `tahoe check --verify` once through the CLI (1.2 s of imports), else the web API
    big = size > 1024 * 1024
    report = client.cli_check(cap, verify=True) if big else client.check(cap, verify=True)
    results = report["results"]
    assert report["summary"] == "Healthy"
    assert results["healthy"] is True
    assert results["count-shares-good"] == 3
    assert results["count-corrupt-shares"] == 0
    # one share on each of the three storage nodes
    holders = {sid for servers in results["sharemap"].values() for sid in servers}
    assert holders == {n.server_id for n in small_tahoe_grid.storage}


def test_cli_put_and_get(small_tahoe_grid: TahoeGrid) -> None:
    client = small_tahoe_grid.clients[0]
    data = os.urandom(5000)
    cap = client.cli_put(data)
    assert cap.startswith("URI:CHK:")
    assert client.cli_get(cap) == data
    assert client.get(cap) == data  # the web API sees the same file


def test_storage_announcement_is_usable_by_clients(small_tahoe_grid: TahoeGrid) -> None:
    node = small_tahoe_grid.storage[0]
    sid, ann = storage_announcement(node)
    assert sid.startswith("v0-") and len(sid) == 3 + 52
    furl = parse_furl(ann["anonymous-storage-FURL"])
    assert furl.hints == (f"tcp:127.0.0.1:{node.port}",)
    (nurl_text,) = ann["anonymous-storage-NURLs"]
    nurl = parse_nurl(nurl_text)
    assert (nurl.host, nurl.port, nurl.swissnum) == ("127.0.0.1", node.port, furl.swissnum)
    assert len(ann["permutation-seed-base32"]) > 20
    # the client's servers.yaml holds exactly these entries, and it is connected to them all
    client = small_tahoe_grid.clients[0]
    doc = yaml.safe_load((client.path / "private" / "servers.yaml").read_text())
    assert doc["storage"][sid]["ann"] == ann
    assert set(doc["storage"]) == client.connected_servers()
    assert set(doc["storage"]) == {n.server_id for n in small_tahoe_grid.storage}


def test_known_caps_through_a_server_given_by_nurl_only(small_tahoe_grid: TahoeGrid) -> None:
    # Point a new client at storage-0 the way it would be pointed at a veil server:
    # NURL and id only, with the stand-in fURL that Tahoe 1.20 requires.
    sid, real = storage_announcement(small_tahoe_grid.storage[0])
    ann = announcement_for(nurls=real["anonymous-storage-NURLs"], nickname="by-nurl")
    assert parse_furl(ann["anonymous-storage-FURL"]).tubid == bytes(20)
    client = small_tahoe_grid.add_client(
        "zero-secret",
        needed=3,
        happy=1,
        total=10,
        servers={sid: ann},
        convergence=ZERO32,
        max_segment_size=4096,
    )
    small_tahoe_grid.start()
    assert (client.path / "private" / "convergence").read_text().strip() == "a" * 52
    assert client.put(b"a" * 56) == CAP_A56
    cap_d = client.put(bytes(range(256)) * 40)
    assert cap_d == CAP_D  # only true if the 4096-byte maximum segment size was applied
    assert client.get(cap_d) == bytes(range(256)) * 40
    results = client.check(cap_d, verify=True)["results"]
    assert results["healthy"] is True and results["count-shares-good"] == 10


def test_announcement_for_refuses_what_tahoe_would_drop() -> None:
    with pytest.raises(TahoeHarnessError):
        announcement_for(nurls=[])
    with pytest.raises(Exception, match="fURL"):
        announcement_for(nurls=["pb://x@127.0.0.1:1/s#v=1"], furl="pb://short@tcp:h:1/s")


def test_create_client_refuses_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(TahoeHarnessError, match="needed/happy/total"):
        TahoeNode.create_client("tahoe", tmp_path / "c", needed=4, happy=2, total=3)
    with pytest.raises(TahoeHarnessError, match="32 bytes"):
        TahoeNode.create_client(
            "tahoe", tmp_path / "d", needed=1, happy=1, total=1, convergence=b"short"
        )


def test_stop_ends_the_process_and_frees_its_ports(tahoe_bin: str, tmp_path: Path) -> None:
    with TahoeGrid(tahoe_bin, tmp_path) as grid:
        (node,) = grid.add_storage(1)
        grid.start()
        assert node.running and node.pid is not None
        pid = node.pid
    assert not node.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    for port in (node.port, node.webport):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with socket.socket() as s:  # and free to listen on again
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
