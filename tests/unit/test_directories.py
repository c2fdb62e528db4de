"""Directory entries (digest §2.2 vectors), directory operations against a dict
model on an in-process grid, and the filesystem commands end to end."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import FormatError, UsageError
from veil.formats import dirnode
from veil.formats import mutable_caps as mc
from veil.formats.dirnode import Entry
from veil.formats.params import EncodingParameters
from veil.services.directories import Directories, entry_for
from veil.services.immutable.downloader import Downloader
from veil.services.mutable.files import MutableFiles
from veil.testing.local_grid import local_grid

WK = bytes(range(16))
CHILD = "URI:SSK:aaaqeayeaudaocajbifqydiob4:aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq"


def test_child_cap_encryption_vectors() -> None:
    empty = dirnode.encrypt_rw_cap(WK, b"")
    assert empty.hex() == (
        "d05f738a043b8404b7495ccb5d550186"
        "6971af5bc2acc121f3a8c3c9e4c67eaa2cf628b320d73bc02284aa976c0018c7"
    )
    field = dirnode.encrypt_rw_cap(WK, CHILD.encode())
    assert len(field) == 135 and field[:16].hex() == "07d55b026a7de0331ddf2aec36d83946"
    assert field.hex().endswith("4f24ab497c8a5754fa9ed426dcaa35")
    assert dirnode.decrypt_rw_cap(WK, field) == CHILD.encode()


def test_a_real_tahoe_lit_directory() -> None:
    entries = dirnode.unpack(b"32:1:b,16:URI:LIT:nbswy3dp,0:,2:{},,", None)
    assert entries == {"b": Entry("URI:LIT:nbswy3dp", None, {})}
    assert dirnode.pack(entries, None) == b"32:1:b,16:URI:LIT:nbswy3dp,0:,2:{},,"


def test_names_are_nfc_and_sorted_and_bad_bytes_refused() -> None:
    decomposed = "cafe\u0301"
    packed = dirnode.pack({decomposed: Entry("URI:LIT:"), "a": Entry("URI:LIT:")}, WK)
    names = list(dirnode.unpack(packed, WK))
    assert names == ["a", "caf\u00e9"]
    for bad in (b"5:abc,", b"9999:x,", b"10:3:a,0:,0:,,"):
        with pytest.raises(FormatError):
            dirnode.unpack(bad, None)
    with pytest.raises(FormatError):
        dirnode.pack({"a/b": Entry("URI:LIT:")}, WK)


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s),
        st.sampled_from(["URI:LIT:nbswy3dp", CHILD, CHILD.replace("URI:SSK:", "URI:DIR2:")]),
        max_size=6,
    )
)
def test_pack_unpack_round_trip(children: dict[str, str]) -> None:
    import unicodedata

    entries = {n: entry_for(c, {"n": n}) for n, c in children.items()}
    back = dirnode.unpack(dirnode.pack(entries, WK), WK)
    norm = {unicodedata.normalize("NFC", n): e for n, e in entries.items()}
    assert back == norm
    readonly = dirnode.unpack(dirnode.pack(entries, WK), None)
    assert all(e.rw_cap is None for e in readonly.values())  # a read cap cannot see write caps


def _dirs() -> Directories:
    broker, _ = local_grid(4)
    files = MutableFiles(broker, EncodingParameters(2, 3, 4), lease_secret=b"s" * 32)
    return Directories(files, Downloader(broker))


OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "rename"]),
        st.sampled_from("abcde"),
        st.sampled_from("abcde"),
    ),
    max_size=8,
)


@settings(max_examples=10, deadline=None)
@given(OPS)
def test_operations_match_a_dict_model(ops: list[tuple[str, str, str]]) -> None:
    async def go() -> None:
        dirs = _dirs()
        cap = await dirs.create()
        model: dict[str, str] = {}
        for i, (op, a, b) in enumerate(ops):
            lit = f"URI:LIT:{'ne' * (i + 1)}"

            def change(
                c: dict[str, Entry], op: str = op, a: str = a, b: str = b
            ) -> dict[str, Entry]:
                if op == "add":
                    c[a] = Entry(lit)  # noqa: B023 - used only within this iteration
                elif op == "remove":
                    c.pop(a, None)
                elif a in c:
                    c[b] = c.pop(a)
                return c

            await dirs.modify(cap, change)
            if op == "add":
                model[a] = lit
            elif op == "remove":
                model.pop(a, None)
            elif a in model:
                model[b] = model.pop(a)
            got = await dirs.children(cap)
            assert {n: e.ro_cap for n, e in got.items()} == model
        ro = mc.attenuate(cap)
        assert isinstance(ro, mc.DirCap)
        assert {n: e.ro_cap for n, e in (await dirs.children(ro)).items()} == model

    asyncio.run(go())


async def test_nested_directories_and_walk() -> None:
    dirs = _dirs()
    root = await dirs.create()
    sub = await dirs.create({"f": Entry("URI:LIT:nbswy3dp")})
    await dirs.modify(root, lambda c: {**c, "sub": entry_for(sub.to_string())})
    entry = await dirs.walk(root, ["sub", "f"])
    assert entry.ro_cap == "URI:LIT:nbswy3dp"
    listing = await dirs.children(root)
    assert listing["sub"].rw_cap == sub.to_string()
    assert listing["sub"].ro_cap == mc.attenuate(sub).to_string()


async def test_immutable_directories() -> None:
    from veil.services.immutable.uploader import Uploader

    broker, _ = local_grid(4)
    params = EncodingParameters(2, 3, 4)
    files = MutableFiles(broker, params, lease_secret=b"s" * 32)
    dirs = Directories(files, Downloader(broker))
    up = Uploader(broker, params, lease_secret=b"s" * 32, convergence_secret=b"c" * 32)
    small = await dirs.create_immutable({"b": Entry("URI:LIT:nbswy3dp")}, up)
    assert small.to_string().startswith("URI:DIR2-LIT:")
    assert (await dirs.children(small))["b"].ro_cap == "URI:LIT:nbswy3dp"
    many = {f"file{i}": Entry("URI:LIT:nbswy3dp", None, {"i": i}) for i in range(20)}
    big = await dirs.create_immutable(many, up)
    assert big.to_string().startswith("URI:DIR2-CHK:")
    assert await dirs.children(big) == many
    assert (await dirs.create_immutable(many, up)) == big  # convergent: same cap again
    mutable_child = await dirs.create()
    with pytest.raises(UsageError, match="only immutable"):
        await dirs.create_immutable({"m": entry_for(mutable_child.to_string())}, up)


def test_merkle_vector_from_the_digest() -> None:
    from veil.formats import merkle
    from veil.formats.hashes import block_hash

    tree = merkle.build_tree([block_hash(x) for x in (b"a", b"b", b"c")])
    assert len(tree) == 7
    assert tree[0].hex() == "305f8c82ff5a9415a90af86ee69326b8449a437fb39bcd395ca732e14e59364d"
    assert tree[6].hex() == "9ed59076b6bee6b75864630c3c20cff6934efe03a60a7fd28b69542fb13a68a3"
    empty = merkle.build_tree([])
    assert empty == [
        bytes.fromhex("e0024730188e2de564a697cc2987407b24ae7eb6b880190c1a0337a5740e527a")
    ]


async def test_mdmf_directories() -> None:
    dirs = _dirs()
    cap = await dirs.create({"a": Entry("URI:LIT:nbswy3dp")}, mdmf=True)
    assert cap.to_string().startswith("URI:DIR2-MDMF:")
    await dirs.modify(cap, lambda c: {**c, "b": Entry("URI:LIT:nbswy3dp")})
    assert set(await dirs.children(cap)) == {"a", "b"}
    ro = mc.attenuate(cap)
    assert isinstance(ro, mc.DirCap) and ro.to_string().startswith("URI:DIR2-MDMF-RO:")
    assert set(await dirs.children(ro)) == {"a", "b"}
