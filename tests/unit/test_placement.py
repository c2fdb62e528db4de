"""Servers of happiness and share placement (digest §4.1, §4.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from veil.formats.placement import happiness, place_shares


def test_happiness_examples_from_the_digest() -> None:
    assert happiness({sh: {"one"} for sh in range(10)}) == 1
    assert happiness({sh: {f"s{i}" for i in range(10)} for sh in range(3)}) == 3
    assert happiness({sh: {f"s{sh}"} for sh in range(10)}) == 10
    assert happiness({}) == 0


def test_ten_servers_get_one_share_each_in_ring_order() -> None:
    servers = [f"s{i}" for i in range(10)]
    placed = place_shares(servers, [], 10, {})
    assert placed == {i: f"s{i}" for i in range(10)}


def test_existing_shares_stay_where_they_are() -> None:
    placed = place_shares(["a", "b", "c"], ["ro"], 4, {"ro": [2], "b": [0]})
    assert placed[2] == "ro"
    assert placed[0] == "b"
    assert happiness({sh: {s} for sh, s in placed.items()}) == 4


@given(
    st.integers(1, 12),
    st.integers(0, 4),
    st.integers(1, 20),
    st.data(),
)
def test_placement_is_complete_and_as_happy_as_possible(
    n_writable: int, n_readonly: int, total: int, data: st.DataObject
) -> None:
    # Every share is placed exactly once, read-only servers only get shares they
    # hold, and the happiness reached is the best any assignment could reach:
    # the maximum matching of the graph of every allowed (server, share) pair.
    writable = [f"w{i}" for i in range(n_writable)]
    readonly = [f"r{i}" for i in range(n_readonly)]
    existing = {
        s: data.draw(st.sets(st.integers(0, total - 1), max_size=3)) for s in writable + readonly
    }
    placed = place_shares(writable, readonly, total, existing)
    assert sorted(placed) == list(range(total))
    for sh, server in placed.items():
        if server in readonly:
            assert sh in existing[server]
    best = happiness(
        {sh: set(writable) | {r for r in readonly if sh in existing[r]} for sh in range(total)}
    )
    assert happiness({sh: {s} for sh, s in placed.items()}) == best
