"""MDMF files on an in-process grid: round trips across segments, partial
reads, in-place updates against a model, and corruption caught per block."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import NotEnoughSharesError
from veil.formats import mutable_caps as mc
from veil.formats.params import EncodingParameters
from veil.services.mutable.files import MutableFiles
from veil.services.mutable.mdmf_files import MDMFFiles
from veil.testing.local_grid import local_grid


def mdmf_files() -> tuple[MDMFFiles, list]:  # type: ignore[type-arg]
    broker, clients = local_grid(5)
    mf = MutableFiles(broker, EncodingParameters(3, 4, 5), lease_secret=b"s" * 32, timeout=5)
    return mf.mdmf(), clients


@pytest.mark.parametrize("size", [0, 1, 131073, 300_000, 3 * 131073 + 5])
async def test_round_trip_and_ranges(size: int) -> None:
    files, _ = mdmf_files()
    data = os.urandom(size)
    cap = await files.create(data)
    assert cap.mdmf and cap.to_string().startswith("URI:MDMF:")
    assert await files.read(cap.read_cap()) == data
    for offset, length in [(0, 10), (131000, 200), (size // 2, 5000)]:
        got = b"".join([c async for c in files.stream(cap, offset, length)])
        assert got == data[offset : offset + length]


@settings(max_examples=8, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 400_000), st.binary(min_size=1, max_size=140_000)),
        min_size=1,
        max_size=4,
    )
)
def test_partial_writes_match_a_model(writes: list[tuple[int, bytes]]) -> None:
    async def go() -> None:
        files, _ = mdmf_files()
        model = bytearray(os.urandom(270_000))
        cap = await files.create(bytes(model))
        for i, (offset, data) in enumerate(writes, start=2):
            assert await files.update(cap, offset, data) == i
            if offset > len(model):
                model.extend(bytes(offset - len(model)))
            model[offset : offset + len(data)] = data
            assert await files.read(cap) == bytes(model)

    asyncio.run(go())


async def test_in_place_update_touches_only_its_segment() -> None:
    files, clients = mdmf_files()
    data = os.urandom(5 * 131073)
    cap = await files.create(data)
    before = [{k: bytes(v) for k, v in c.service.backend.slots.items()} for c in clients]  # type: ignore[attr-defined]
    await files.update(cap, 140_000, b"veil" * 1024)
    changed = 0
    for c, old in zip(clients, before, strict=True):
        for key, new in c.service.backend.slots.items():  # type: ignore[attr-defined]
            changed += sum(1 for a, b in zip(old[key], new, strict=False) if a != b)
    # one segment's blocks (~44 KiB each), hash trees and headers; not the whole file
    assert 0 < changed < 5 * 60_000
    expected = data[:140_000] + b"veil" * 1024 + data[140_000 + 4096 :]
    assert await files.read(cap) == expected


async def test_corrupt_blocks_are_replaced_and_too_few_fail() -> None:
    files, clients = mdmf_files()
    data = os.urandom(200_000)
    cap = await files.create(data)
    si = cap.read_cap().storage_index
    backend = clients[0].service.backend  # type: ignore[attr-defined]
    for (s, _), slot in backend.slots.items():
        if s == si:
            slot[468 + 2167 + 20] ^= 1  # a bit of a block of segment 0
    assert await files.read(cap) == data  # another share's block is used
    for c in clients[:3]:
        c.fail = True
    with pytest.raises(NotEnoughSharesError):
        await files.read(cap)


async def test_mutable_files_dispatches_mdmf_caps() -> None:
    files, _ = mdmf_files()
    cap = await files.create(b"hello mdmf")
    mf = files.files
    assert await mf.read(cap) == b"hello mdmf"
    await mf.overwrite(cap, b"second")
    assert await mf.read(mc.attenuate(cap)) == b"second"  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 2900), st.binary(min_size=1, max_size=8))
def test_hostile_share_bytes_raise_only_format_errors(noise: bytes, at: int, patch: bytes) -> None:
    from veil.errors import FormatError
    from veil.formats import mdmf, mutable_container, sdmf

    for data in (noise, (b"\x01" + noise[1:]) if noise else noise, b"\x00" + noise):
        for parse in (sdmf.parse_share, mdmf.parse_meta, mutable_container.parse_header):
            try:
                parse(data[:at] + patch + data[at + len(patch) :])
            except FormatError:
                pass
