"""The order of a share's hash chain, as Tahoe 1.20 writes it, and vector M.

Tahoe writes the chain in the iteration order of the Python set that
``HashTree.needed_hashes`` builds; ``tahoe_chain_order`` reproduces that order
without relying on this interpreter's sets. Shares written by a live Tahoe for
many N are compared byte for byte in tests/interop/test_share_identity.py.
"""

from __future__ import annotations

import platform

import pytest

from veil.formats import base32
from veil.formats.caps import parse_cap
from veil.formats.merkle import needed_hashes, parent, sibling, tahoe_chain_order
from veil.formats.params import next_power_of_two

from .test_vectors import Z32, ZfecCoder, encode_data


def _cpython_set_order(leaf: int, num_leaves: int) -> list[int]:
    """What Tahoe's code does, run on this interpreter's own set type."""
    here = next_power_of_two(num_leaves) - 1 + leaf
    siblings = []
    node = here
    while node:
        siblings.append(sibling(node))
        node = parent(node)
    chain = set(siblings)
    chain.add(here)
    return list(chain)


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="CPython's set order")
def test_chain_order_is_cpython_set_order_for_every_n_and_share() -> None:
    for n in range(1, 257):
        for shnum in range(n):
            assert tahoe_chain_order(shnum, n) == _cpython_set_order(shnum, n), (n, shnum)


def test_chain_order_holds_the_needed_nodes() -> None:
    for n in (1, 2, 7, 16, 17, 100, 255, 256):
        for shnum in range(n):
            order = tahoe_chain_order(shnum, n)
            assert sorted(order) == needed_hashes(shnum, n, include_leaf=True)


def test_chain_order_is_not_ascending_above_16_as_the_digest_says() -> None:
    assert tahoe_chain_order(0, 10) == [2, 4, 8, 15, 16]  # vector A, share 0
    assert tahoe_chain_order(98, 100) == [1, 226, 225, 5, 14, 111, 56, 28]
    assert tahoe_chain_order(0, 1) == [0]
    assert any(tahoe_chain_order(s, 17) != sorted(tahoe_chain_order(s, 17)) for s in range(17))


def test_vector_m_two_segments_of_the_default_size() -> None:
    data = bytes(range(256)) * 8192  # P2MiB
    cap, shares = encode_data(data, Z32, 3, 10, 1048576, 1, ZfecCoder(3, 10))
    want = "URI:CHK:tnzwcqddvgfal2vnpupkeu5shy:g2jweblsbbzepexun7fb374dqkkhthgasjirpgtmmld65mizckza:3:10:2097152"
    assert cap.to_string() == want
    assert base32.b2a(cap.storage_index) == "q5taa2bwvxmvcxzusagkf7ay5e"
    assert parse_cap(want) == cap
    assert all(len(s) == 699879 for s in shares.values())
