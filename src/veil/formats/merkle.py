"""Tahoe's Merkle hash trees (digest §3.4), in the flat breadth-first layout.

Node ``n`` has children ``2n+1`` and ``2n+2``; a tree over ``p`` (a power of
two) leaves has ``2p-1`` nodes and leaf ``j`` is node ``p-1+j``. Missing
leaves are padded with the tagged hash of their position.
"""

from __future__ import annotations

from collections.abc import Sequence

from veil.errors import IntegrityError
from veil.formats.hashes import (
    MERKLE_EMPTY_LEAF_TAG,
    MERKLE_INTERNAL_TAG,
    tagged_hash,
    tagged_pair_hash,
)
from veil.formats.params import next_power_of_two


def empty_leaf_hash(position: int) -> bytes:
    return tagged_hash(MERKLE_EMPTY_LEAF_TAG, str(position).encode("ascii"))


def pair_hash(left: bytes, right: bytes) -> bytes:
    return tagged_pair_hash(MERKLE_INTERNAL_TAG, left, right)


def tree_node_count(num_leaves: int) -> int:
    return 2 * next_power_of_two(max(num_leaves, 1)) - 1


def build_tree(leaves: Sequence[bytes]) -> list[bytes]:
    """All nodes of the tree over ``leaves``, flat, root first."""
    p = next_power_of_two(max(len(leaves), 1))
    row = list(leaves) + [empty_leaf_hash(i) for i in range(len(leaves), p)]
    rows = [row]
    while len(row) > 1:
        row = [pair_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
        rows.append(row)
    nodes: list[bytes] = []
    for r in reversed(rows):
        nodes.extend(r)
    return nodes


def parent(n: int) -> int:
    return (n - 1) // 2


def sibling(n: int) -> int:
    return n + 1 if n % 2 else n - 1


def needed_hashes(leaf: int, num_leaves: int, *, include_leaf: bool = False) -> list[int]:
    """Node indexes needed to check ``leaf`` against the root, ascending."""
    p = next_power_of_two(max(num_leaves, 1))
    n = p - 1 + leaf
    needed = {n} if include_leaf else set()
    while n > 0:
        needed.add(sibling(n))
        n = parent(n)
    return sorted(needed)


# CPython's set table (Objects/setobject.c), enough of it for small int keys:
# hash(i) == i, ten slots probed linearly, then a perturbed jump; the table
# starts at 8 slots and grows when 3/5 full to the next power of two above
# four times the entries, re-inserting in table order.
_LINEAR_PROBES = 9
_PERTURB_SHIFT = 5


def _set_slot(table: list[int | None], key: int) -> int:
    mask = len(table) - 1
    i, perturb = key & mask, key
    while True:
        span = _LINEAR_PROBES if i + _LINEAR_PROBES <= mask else 0
        for j in range(i, i + span + 1):
            if table[j] is None or table[j] == key:
                return j
        perturb >>= _PERTURB_SHIFT
        i = (i * 5 + 1 + perturb) & mask


def _set_iteration_order(keys: Sequence[int]) -> list[int]:
    table: list[int | None] = [None] * 8
    used = 0
    for key in keys:
        slot = _set_slot(table, key)
        if table[slot] == key:
            continue
        table[slot] = key
        used += 1
        if used * 5 >= (len(table) - 1) * 3:
            size = 8
            while size <= used * 4:
                size <<= 1
            old, table = table, [None] * size
            for k in old:
                if k is not None:
                    table[_set_slot(table, k)] = k
    return [k for k in table if k is not None]


def tahoe_chain_order(leaf: int, num_leaves: int) -> list[int]:
    """A share's hash-chain node indexes in the order Tahoe 1.20 writes them.

    Tahoe's encoder writes ``needed_hashes(shnum, include_leaf=True)`` as it
    iterates the Python ``set`` that method builds (siblings from the leaf
    up, then the leaf itself), which is ascending only for N <= 16. The
    order is reproduced here without relying on this interpreter's sets, so
    shares are byte-identical to Tahoe's for every N.
    """
    p = next_power_of_two(max(num_leaves, 1))
    n = p - 1 + leaf
    siblings = []
    here = n
    while here > 0:
        siblings.append(sibling(here))
        here = parent(here)
    return _set_iteration_order([*siblings, n])


def check_tree(nodes: Sequence[bytes], root: bytes, what: str) -> None:
    """Check that a complete flat tree is self-consistent and has ``root``.

    Raises ``IntegrityError`` naming ``what`` otherwise.
    """
    count = len(nodes)
    if count == 0 or count & (count + 1) or nodes[0] != root:
        raise IntegrityError(f"{what}: root does not match")
    for n in range((count - 1) // 2):
        if pair_hash(nodes[2 * n + 1], nodes[2 * n + 2]) != nodes[n]:
            raise IntegrityError(f"{what}: inconsistent node {n}")


def check_chain(
    root: bytes, leaf: int, num_leaves: int, chain: dict[int, bytes], what: str
) -> bytes:
    """Check a leaf-plus-siblings chain against ``root``; return the leaf hash."""
    p = next_power_of_two(max(num_leaves, 1))
    n = p - 1 + leaf
    try:
        value = chain[n]
        while n > 0:
            sib = chain[sibling(n)]
            value = pair_hash(value, sib) if n % 2 else pair_hash(sib, value)
            n = parent(n)
    except KeyError as exc:
        raise IntegrityError(f"{what}: hash chain is missing node {exc.args[0]}") from None
    if value != root:
        raise IntegrityError(f"{what}: hash chain does not lead to the root")
    return chain[p - 1 + leaf]
