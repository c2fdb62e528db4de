"""Servers of happiness and share placement (digest §4.1, §4.3).

Happiness is the size of a maximum matching between servers and the share
numbers they hold (or will hold). Placement follows Tahoe's three matchings:
read-only servers to the shares they already hold, then writable servers to
the shares they already hold, then unused writable servers to the rest, and
finally spreads the leftovers over the least-loaded writable servers.
Servers are strings; lists are in permuted-ring order, earliest preferred.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def _max_matching(edges: Mapping[str, Sequence[int]]) -> dict[int, str]:
    """Maximum bipartite matching server→share by augmenting paths (Kuhn)."""
    owner: dict[int, str] = {}

    def augment(server: str, seen: set[int]) -> bool:
        for share in edges[server]:
            if share in seen:
                continue
            seen.add(share)
            if share not in owner or augment(owner[share], seen):
                owner[share] = server
                return True
        return False

    for server in edges:
        augment(server, set())
    return owner


def happiness(holders: Mapping[int, Iterable[str]]) -> int:
    """Servers of happiness for a map share number → servers holding it."""
    edges: dict[str, list[int]] = {}
    for share, servers in sorted(holders.items()):
        for server in servers:
            edges.setdefault(server, []).append(share)
    return len(_max_matching(edges))


def place_shares(
    writable: Sequence[str],
    readonly: Sequence[str],
    total_shares: int,
    existing: Mapping[str, Iterable[int]],
) -> dict[int, str]:
    """Choose a server for every share number 0..total_shares-1.

    ``existing`` maps servers to the shares they already hold. A share mapped
    to a read-only server is one it already holds. Raises ``ValueError`` when
    no writable server exists and some share is held nowhere.
    """
    have = {s: sorted(set(existing.get(s, ()))) for s in (*readonly, *writable)}
    placed: dict[int, str] = {}
    used: set[str] = set()
    # M1: read-only servers and the shares they hold.
    m1 = _max_matching({s: have[s] for s in readonly})
    placed.update(m1)
    used.update(m1.values())
    # M2: writable servers and the shares they hold.
    m2 = _max_matching(
        {s: [sh for sh in have[s] if sh not in placed] for s in writable if s not in used}
    )
    placed.update(m2)
    used.update(m2.values())
    # M3: unused writable servers take one remaining share each, in ring order.
    remaining = [sh for sh in range(total_shares) if sh not in placed]
    free_servers = [s for s in writable if s not in used]
    for share, server in zip(remaining, free_servers, strict=False):
        placed[share] = server
        used.add(server)
    # Leftovers: a server already holding it, else the least-loaded writable one.
    load = {s: 0 for s in writable}
    for server in placed.values():
        if server in load:
            load[server] += 1
    for share in range(total_shares):
        if share in placed:
            continue
        holders = [s for s in (*readonly, *writable) if share in have[s]]
        if holders:
            placed[share] = holders[0]
            continue
        if not writable:
            raise ValueError("no writable server for a homeless share")
        server = min(writable, key=lambda s: load[s])
        placed[share] = server
        load[server] += 1
    return placed
