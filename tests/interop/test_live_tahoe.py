"""Live interoperability with the real Tahoe-LAFS 1.20, both directions, on loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from veil.adapters.node.client_session import open_client
from veil.adapters.node.nodedir import NodeDirectory
from veil.formats.caps import CHKReadCap, LiteralCap, parse_read_cap

from .tahoe_harness import TahoeNode, _http, storage_announcement, tahoe_executable

pytestmark = pytest.mark.integration

SIZES = [0, 1, 55, 56, 4096, 1048577, 3 * 1048576]
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
ZERO = b"\x00" * 32


@pytest.fixture(scope="module")
def tahoe() -> str:
    return tahoe_executable()


@pytest.fixture(scope="module")
def tahoe_nodes(tahoe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[TahoeNode]]:
    root = tmp_path_factory.mktemp("tahoe-servers")
    nodes = [TahoeNode.create_storage(tahoe, root / f"ts{i}") for i in range(3)]
    try:
        for n in nodes:
            n.start()
        for n in nodes:
            n.wait_ready()
        yield nodes
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture(scope="module")
def tahoe_servers(tahoe_nodes: list[TahoeNode]) -> dict[str, dict[str, Any]]:
    return dict(storage_announcement(n) for n in tahoe_nodes)


@pytest.fixture(scope="module")
def veil_grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("veil-grid") / "g"
    r = subprocess.run(
        [
            *VEIL,
            "grid",
            "start",
            str(root),
            "--servers",
            "3",
            "--shares-needed",
            "2",
            "--shares-happy",
            "3",
            "--shares-total",
            "3",
        ],
        capture_output=True,
    )
    assert r.returncode == 0, r.stderr
    (root / "client" / "private" / "convergence").write_text("a" * 52 + "\n")
    yield root
    subprocess.run([*VEIL, "grid", "stop", str(root)], capture_output=True)


def veil_servers(grid: Path) -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((grid / "client" / "private" / "servers.yaml").read_text())
    return {sid: e["ann"] for sid, e in doc["storage"].items()}


@contextmanager
def running_tahoe_client(
    tahoe: str, path: Path, servers: dict[str, dict[str, Any]]
) -> Iterator[TahoeNode]:
    """A Tahoe client (2-of-3, convergence secret of zeros) using ``servers``."""
    node = TahoeNode.create_client(
        tahoe, path, needed=2, happy=3, total=3, servers=servers, convergence=ZERO
    )
    node.start()
    try:
        node.wait_ready(connected_servers=len(servers))
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def tahoe_client_on_veil(
    tahoe: str, veil_grid: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TahoeNode]:
    path = tmp_path_factory.mktemp("tc") / "c"
    with running_tahoe_client(tahoe, path, veil_servers(veil_grid)) as node:
        yield node


@pytest.fixture(scope="module")
def tahoe_client_on_tahoe(
    tahoe: str, tahoe_servers: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TahoeNode]:
    with running_tahoe_client(tahoe, tmp_path_factory.mktemp("tc2") / "c", tahoe_servers) as node:
        yield node


@pytest.fixture(scope="module")
def veil_client_on_tahoe(
    tahoe_servers: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("vc") / "c"
    from veil.formats.params import EncodingParameters

    node = NodeDirectory.create(path, storage=False, params=EncodingParameters(2, 3, 3))
    node.write_servers(tahoe_servers)
    (path / "private" / "convergence").write_text("a" * 52 + "\n")
    return path


async def veil_put(client_dir: Path, data: bytes) -> str:
    async with open_client(client_dir) as c:
        return (await c.uploader().upload_bytes(data)).cap.to_string()


async def veil_get(client_dir: Path, cap: str) -> bytes:
    async with open_client(client_dir) as c:
        return await c.downloader().download_bytes(parse_read_cap(cap))


@pytest.mark.parametrize("size", SIZES)
def test_tahoe_client_uploads_to_veil_servers_and_veil_reads(
    tahoe_client_on_veil: TahoeNode, veil_grid: Path, size: int
) -> None:
    data = os.urandom(size)
    cap = tahoe_client_on_veil.put(data)
    assert asyncio.run(veil_get(veil_grid / "client", cap)) == data
    # and the same plaintext, secret and parameters give the same cap in veil
    assert asyncio.run(veil_put(veil_grid / "client", data)) == cap


@pytest.mark.parametrize("size", [56, 100_000, 3 * 1048576])
def test_veil_uploads_to_veil_servers_and_tahoe_reads_and_verifies(
    tahoe_client_on_veil: TahoeNode, veil_grid: Path, size: int
) -> None:
    data = os.urandom(size)
    cap = asyncio.run(veil_put(veil_grid / "client", data))
    assert tahoe_client_on_veil.get(cap) == data
    result = tahoe_client_on_veil.check(cap, verify=True)
    assert result["results"]["healthy"] is True, result


@pytest.mark.parametrize("size", [56, 4096, 1048577, 3 * 1048576])
def test_veil_uploads_to_tahoe_servers_and_tahoe_reads(
    veil_client_on_tahoe: Path, tahoe_client_on_tahoe: TahoeNode, size: int
) -> None:
    data = os.urandom(size)
    cap = asyncio.run(veil_put(veil_client_on_tahoe, data))
    assert tahoe_client_on_tahoe.get(cap) == data
    assert tahoe_client_on_tahoe.check(cap, verify=True)["results"]["healthy"] is True


@pytest.mark.parametrize("size", [56, 1048577])
def test_veil_reads_what_tahoe_uploaded_to_tahoe_servers(
    veil_client_on_tahoe: Path, tahoe_client_on_tahoe: TahoeNode, size: int
) -> None:
    data = os.urandom(size)
    cap = tahoe_client_on_tahoe.put(data)
    assert asyncio.run(veil_get(veil_client_on_tahoe, cap)) == data


def _lease_counts(storage_dirs: list[Path], si: bytes) -> list[int]:
    from veil.adapters.storage.disk import DiskBackend

    counts = []
    for st in storage_dirs:
        backend = DiskBackend(st, discard_incoming=False)
        counts.extend(len(backend.get_leases(si, sh)) for sh in backend.list_shares(si))
    return counts


def _add_lease(node: TahoeNode, cap: str) -> None:
    req = urllib.request.Request(
        f"{node.url}/uri/{cap}?t=check&add-lease=true&output=JSON", data=b"", method="POST"
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()


def test_leases_cross_implementations(
    veil_client_on_tahoe: Path,
    tahoe_client_on_tahoe: TahoeNode,
    tahoe_nodes: list[TahoeNode],
    tahoe_client_on_veil: TahoeNode,
    veil_grid: Path,
) -> None:
    # veil, holding the same lease secret as the Tahoe client, uploads to Tahoe servers;
    # the Tahoe client's add-lease then renews that very lease: no second one appears.
    secret = (tahoe_client_on_tahoe.path / "private" / "secret").read_text()
    (veil_client_on_tahoe / "private" / "secret").write_text(secret)
    cap = parse_read_cap(asyncio.run(veil_put(veil_client_on_tahoe, os.urandom(5000))))
    assert isinstance(cap, CHKReadCap)
    tahoe_storage = [n.path / "storage" for n in tahoe_nodes]
    before = _lease_counts(tahoe_storage, cap.storage_index)
    assert before == [1, 1, 1]
    _add_lease(tahoe_client_on_tahoe, cap.to_string())
    assert _lease_counts(tahoe_storage, cap.storage_index) == before

    # A Tahoe client with its own secret adds a second lease to shares on veil servers.
    vcap = parse_read_cap(asyncio.run(veil_put(veil_grid / "client", os.urandom(5000))))
    assert isinstance(vcap, CHKReadCap)
    veil_storage = [n / "storage" for n in sorted(veil_grid.glob("storage-*"))]
    assert _lease_counts(veil_storage, vcap.storage_index) == [1, 1, 1]
    _add_lease(tahoe_client_on_veil, vcap.to_string())
    assert _lease_counts(veil_storage, vcap.storage_index) == [2, 2, 2]


def test_mixed_grid_any_three_servers_rebuild(
    tahoe_servers: dict[str, dict[str, Any]],
    veil_grid: Path,
    tahoe: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from itertools import combinations

    from veil.formats.params import EncodingParameters

    mixed = dict(list(tahoe_servers.items())[:2]) | veil_servers(veil_grid)
    assert len(mixed) == 5
    root = tmp_path_factory.mktemp("mixed")
    vdir = root / "veil"
    NodeDirectory.create(vdir, storage=False, params=EncodingParameters(3, 5, 5)).write_servers(
        mixed
    )
    tnode = TahoeNode.create_client(
        tahoe, root / "tahoe", needed=3, happy=5, total=5, servers=mixed
    )
    tnode.start()
    try:
        tnode.wait_ready(connected_servers=5)
        by_veil = os.urandom(300_000)
        by_tahoe = os.urandom(300_000)
        caps = {asyncio.run(veil_put(vdir, by_veil)): by_veil, tnode.put(by_tahoe): by_tahoe}
        ids = sorted(mixed)
        for i, subset in enumerate(combinations(ids, 3)):
            sub = root / f"sub{i}"
            NodeDirectory.create(sub, storage=False).write_servers({s: mixed[s] for s in subset})
            for cap, data in caps.items():
                assert asyncio.run(veil_get(sub, cap)) == data
    finally:
        tnode.stop()


# -- mutable files and directories: a Tahoe client on veil storage servers -------------


def _tahoe_json(node: TahoeNode, cap: str) -> Any:
    import json

    return json.loads(_http("GET", f"{node.url}/uri/{cap}?t=json"))


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_tahoe_mutable_files_on_veil_servers(
    tahoe_client_on_veil: TahoeNode, veil_grid: Path, fmt: str
) -> None:
    from veil.formats.mutable_caps import attenuate, parse_user_cap

    node = tahoe_client_on_veil
    first, second = os.urandom(10_000), os.urandom(300_000 if fmt == "MDMF" else 20_000)
    cap = _http("PUT", f"{node.url}/uri?format={fmt}", first).decode().strip()
    assert cap.startswith("URI:MDMF:" if fmt == "MDMF" else "URI:SSK:")
    assert node.get(cap) == first
    _http("PUT", f"{node.url}/uri/{cap}", second)  # a new version: read, test and write
    assert node.get(cap) == second
    if fmt == "MDMF":  # an in-place partial update of one segment
        _http("PUT", f"{node.url}/uri/{cap}?offset=140000", b"veil" * 5)
        second = second[:140000] + b"veil" * 5 + second[140020:]
        assert node.get(cap) == second
    check = node.check(cap, verify=True)
    assert check["results"]["healthy"] is True, check
    # veil's attenuation agrees with Tahoe's
    info = _tahoe_json(node, cap)[1]
    assert attenuate(parse_user_cap(cap)).to_string() == info["ro_uri"]
    assert attenuate(parse_user_cap(cap), verify=True).to_string() == info["verify_uri"]
    # the shares sit in Tahoe-format mutable containers on the veil servers
    from veil.adapters.storage.disk import DiskBackend
    from veil.formats.mutable_caps import SSKWriteCap

    write = parse_user_cap(cap)
    assert isinstance(write, SSKWriteCap)
    si = write.read_cap().storage_index
    slots = [
        DiskBackend(d, discard_incoming=False).list_slots(si)
        for d in sorted(veil_grid.glob("storage-*/storage"))
    ]
    assert sum(len(s) for s in slots) == 3  # 2-of-3: one share on each server


def test_tahoe_directories_on_veil_servers(tahoe_client_on_veil: TahoeNode) -> None:
    from veil.formats.mutable_caps import DirCap, attenuate, parse_user_cap

    node = tahoe_client_on_veil
    dircap = _http("POST", f"{node.url}/uri?t=mkdir", b"").decode().strip()
    assert isinstance(parse_user_cap(dircap), DirCap)
    data = os.urandom(5000)
    _http("PUT", f"{node.url}/uri/{dircap}/hello.txt", data)
    _http("POST", f"{node.url}/uri/{dircap}?t=mkdir&name=sub", b"")
    listing = _tahoe_json(node, dircap)
    assert listing[0] == "dirnode" and set(listing[1]["children"]) == {"hello.txt", "sub"}
    assert _http("GET", f"{node.url}/uri/{dircap}/hello.txt") == data
    assert attenuate(parse_user_cap(dircap)).to_string() == listing[1]["ro_uri"]


async def _veil_mutable(client_dir: Path, action: str, cap: str = "", data: bytes = b"") -> Any:
    from veil.formats.mutable_caps import parse_user_cap

    async with open_client(client_dir) as c:
        files = c.mutable_files()
        if action == "create":
            return (await files.create(data)).to_string()
        parsed = parse_user_cap(cap)
        if action == "read":
            return await files.read(parsed)  # type: ignore[arg-type]
        return await files.overwrite(parsed, data)  # type: ignore[arg-type]


def test_sdmf_both_ways_on_veil_servers(tahoe_client_on_veil: TahoeNode, veil_grid: Path) -> None:
    node, client = tahoe_client_on_veil, veil_grid / "client"
    one, two, three = os.urandom(3000), os.urandom(7000), b""
    cap = asyncio.run(_veil_mutable(client, "create", data=one))
    assert node.get(cap) == one  # Tahoe reads what veil made
    _http("PUT", f"{node.url}/uri/{cap}", two)  # Tahoe writes the next version
    assert asyncio.run(_veil_mutable(client, "read", cap)) == two
    assert asyncio.run(_veil_mutable(client, "overwrite", cap, three)) >= 3
    assert node.get(cap) == three  # an empty version too
    assert node.check(cap, verify=True)["results"]["healthy"] is True
    made_by_tahoe = _http("PUT", f"{node.url}/uri?format=SDMF", one).decode().strip()
    assert asyncio.run(_veil_mutable(client, "read", made_by_tahoe)) == one


def test_sdmf_both_ways_on_tahoe_servers(
    tahoe_client_on_tahoe: TahoeNode, veil_client_on_tahoe: Path
) -> None:
    node, client = tahoe_client_on_tahoe, veil_client_on_tahoe
    one, two = os.urandom(5000), os.urandom(100)
    cap = asyncio.run(_veil_mutable(client, "create", data=one))
    assert node.get(cap) == one
    _http("PUT", f"{node.url}/uri/{cap}", two)
    assert asyncio.run(_veil_mutable(client, "read", cap)) == two
    asyncio.run(_veil_mutable(client, "overwrite", cap, one))
    assert node.get(cap) == one


async def _veil_dirs(client_dir: Path, action: str, cap: str = "", **kw: Any) -> Any:
    from veil.formats.mutable_caps import DirCap, parse_user_cap
    from veil.services.directories import entry_for

    async with open_client(client_dir) as c:
        dirs = c.directories()
        if action == "create":
            children = {n: entry_for(v) for n, v in kw["children"].items()}
            return (await dirs.create(children)).to_string()
        parsed = parse_user_cap(cap)
        assert isinstance(parsed, DirCap)
        if action == "list":
            return await dirs.children(parsed)
        if action == "read":
            entry = await dirs.walk(parsed, kw["path"])
            file = parse_user_cap(entry.rw_cap or entry.ro_cap or "")
            if isinstance(file, CHKReadCap | LiteralCap):
                return await c.downloader().download_bytes(file)
            return await c.mutable_files().read(file)  # type: ignore[arg-type]
        await dirs.modify(parsed, lambda ch: {**ch, kw["name"]: entry_for(kw["child"])})
        return None


def test_directories_both_ways(tahoe_client_on_veil: TahoeNode, veil_grid: Path) -> None:
    import json

    node, client = tahoe_client_on_veil, veil_grid / "client"
    # Tahoe makes a tree: a file, a mutable file and a subdirectory
    root = _http("POST", f"{node.url}/uri?t=mkdir", b"").decode().strip()
    big = os.urandom(70_000)
    _http("PUT", f"{node.url}/uri/{root}/big.bin", big)
    _http("PUT", f"{node.url}/uri/{root}/notes.txt?format=SDMF", b"mutable notes")
    _http("POST", f"{node.url}/uri/{root}?t=mkdir&name=sub", b"")
    listing = asyncio.run(_veil_dirs(client, "list", root))
    assert set(listing) == {"big.bin", "notes.txt", "sub"}
    assert listing["notes.txt"].rw_cap.startswith("URI:SSK:")  # decrypted with the write key
    assert asyncio.run(_veil_dirs(client, "read", root, path=["big.bin"])) == big
    assert asyncio.run(_veil_dirs(client, "read", root, path=["notes.txt"])) == b"mutable notes"
    # veil adds a child; Tahoe sees it
    lit = asyncio.run(veil_put(client, b"tiny"))
    asyncio.run(_veil_dirs(client, "link", root, name="from-veil.txt", child=lit))
    children = json.loads(_http("GET", f"{node.url}/uri/{root}?t=json"))[1]["children"]
    assert set(children) == {"big.bin", "notes.txt", "sub", "from-veil.txt"}
    assert _http("GET", f"{node.url}/uri/{root}/from-veil.txt") == b"tiny"
    # veil makes a directory; Tahoe lists, reads and changes it; veil sees the change
    chk = asyncio.run(veil_put(client, os.urandom(5000)))
    made = asyncio.run(_veil_dirs(client, "create", children={"a.bin": chk, "b.txt": lit}))
    assert set(json.loads(_http("GET", f"{node.url}/uri/{made}?t=json"))[1]["children"]) == {
        "a.bin",
        "b.txt",
    }
    assert _http("GET", f"{node.url}/uri/{made}/b.txt") == b"tiny"
    _http("PUT", f"{node.url}/uri/{made}/c.txt", b"added by tahoe")
    assert asyncio.run(_veil_dirs(client, "read", made, path=["c.txt"])) == b"added by tahoe"


async def _veil_mdmf(client_dir: Path, action: str, cap: str = "", **kw: Any) -> Any:
    from veil.formats.mutable_caps import SSKWriteCap, parse_user_cap

    async with open_client(client_dir) as c:
        files = c.mutable_files().mdmf()
        if action == "create":
            return (await files.create(kw["data"])).to_string()
        parsed = parse_user_cap(cap)
        assert isinstance(parsed, SSKWriteCap)
        if action == "read":
            return await files.read(parsed)
        return await files.update(parsed, kw["offset"], kw["data"])


@pytest.mark.parametrize("servers", ["veil", "tahoe"])
def test_mdmf_partial_updates_both_ways(
    servers: str,
    tahoe_client_on_veil: TahoeNode,
    veil_grid: Path,
    tahoe_client_on_tahoe: TahoeNode,
    veil_client_on_tahoe: Path,
) -> None:
    if servers == "veil":
        node, client = tahoe_client_on_veil, veil_grid / "client"
    else:
        node, client = tahoe_client_on_tahoe, veil_client_on_tahoe
    data = bytearray(os.urandom(400_000))  # 4 segments
    cap = _http("PUT", f"{node.url}/uri?format=MDMF", bytes(data)).decode().strip()
    assert asyncio.run(_veil_mdmf(client, "read", cap)) == data
    asyncio.run(_veil_mdmf(client, "update", cap, offset=200_000, data=b"from veil" * 100))
    data[200_000:200_900] = b"from veil" * 100
    assert node.get(cap) == data  # Tahoe reads veil's in-place update
    _http("PUT", f"{node.url}/uri/{cap}?offset=1000", b"from tahoe" * 50)
    data[1000:1500] = b"from tahoe" * 50
    assert asyncio.run(_veil_mdmf(client, "read", cap)) == data
    assert node.check(cap, verify=True)["results"]["healthy"] is True
    made = asyncio.run(_veil_mdmf(client, "create", data=b"made by veil" * 30_000))
    assert node.get(made) == b"made by veil" * 30_000
    assert node.check(made, verify=True)["results"]["healthy"] is True


def test_tahoe_reads_an_immutable_directory_veil_made(
    tahoe_client_on_veil: TahoeNode, veil_grid: Path
) -> None:
    import json

    from veil.formats.dirnode import Entry

    async def make() -> str:
        async with open_client(veil_grid / "client") as c:
            chk = (await c.uploader().upload_bytes(os.urandom(3000))).cap.to_string()
            entries = {f"f{i}": Entry(chk if i == 0 else "URI:LIT:nbswy3dp") for i in range(10)}
            return (await c.directories().create_immutable(entries, c.uploader())).to_string()

    cap = asyncio.run(make())
    assert cap.startswith("URI:DIR2-CHK:")
    info = json.loads(_http("GET", f"{tahoe_client_on_veil.url}/uri/{cap}?t=json"))
    assert info[0] == "dirnode" and info[1]["mutable"] is False
    assert set(info[1]["children"]) == {f"f{i}" for i in range(10)}
    assert _http("GET", f"{tahoe_client_on_veil.url}/uri/{cap}/f1") == b"hello"


def test_tahoe_lists_and_extends_an_mdmf_directory_veil_made(
    tahoe_client_on_veil: TahoeNode, veil_grid: Path
) -> None:
    import json

    from veil.formats.dirnode import Entry

    async def make() -> str:
        async with open_client(veil_grid / "client") as c:
            entries = {"hello.txt": Entry("URI:LIT:nbswy3dp")}
            return (await c.directories().create(entries, mdmf=True)).to_string()

    cap = asyncio.run(make())
    assert cap.startswith("URI:DIR2-MDMF:")
    node = tahoe_client_on_veil
    assert _http("GET", f"{node.url}/uri/{cap}/hello.txt") == b"hello"
    _http("PUT", f"{node.url}/uri/{cap}/more.txt", b"more from tahoe")
    children = json.loads(_http("GET", f"{node.url}/uri/{cap}?t=json"))[1]["children"]
    assert set(children) == {"hello.txt", "more.txt"}
    assert asyncio.run(_veil_dirs(veil_grid / "client", "read", cap, path=["more.txt"])) == (
        b"more from tahoe"
    )
