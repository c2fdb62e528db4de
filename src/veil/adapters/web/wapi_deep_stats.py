"""Tahoe's deep-stats counters, for manifests and deep checks of the web API.

``DeepStats`` counts what a walk meets exactly as Tahoe 1.20's
``allmydata.deep_stats.DeepStats`` does (its JSON API version 1): files by kind,
sizes of immutable and literal files, directory sizes (the bytes of the
directory's contents) and the largest directory, and the histogram of file
sizes in buckets of two per decade ((0,0), (1,3), (4,10), (11,31), …).
Mutable files are counted without a size, as in Tahoe.
"""

from __future__ import annotations

import math
from typing import Any

from veil.adapters.web.wapi_nodes import Node

API_VERSION = 1
COUNTERS = (
    "count-immutable-files",
    "count-mutable-files",
    "count-literal-files",
    "count-files",
    "count-directories",
    "count-unknown",
    "size-immutable-files",
    "size-literal-files",
    "size-directories",
    "largest-directory",
    "largest-directory-children",
    "largest-immutable-file",
)
ROOT = math.sqrt(10)


def next_power_of_k(n: int, k: float) -> float:
    p: float = 1
    while p < n:
        p *= k
    return p


class DeepStats:
    def __init__(self) -> None:
        self.stats: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.histogram: dict[tuple[int, int], int] = {}
        self.buckets: list[tuple[int, int]] = [(0, 0), (1, 3)]

    def add_node(self, node: Node) -> None:
        s = self.stats
        if node.is_unknown:
            s["count-unknown"] += 1
        elif node.is_dir:
            s["count-directories"] += 1
        elif node.is_mutable:
            s["count-files"] += 1
            s["count-mutable-files"] += 1
        else:
            s["count-files"] += 1
            size = node.known_size() or 0
            bucket = self.which_bucket(size)
            self.histogram[bucket] = self.histogram.get(bucket, 0) + 1
            if node.storage_index() is None:  # a LIT file
                s["count-literal-files"] += 1
                s["size-literal-files"] += size
            else:
                s["count-immutable-files"] += 1
                s["size-immutable-files"] += size
                s["largest-immutable-file"] = max(s["largest-immutable-file"], size)

    def enter_directory(self, size: int | None, children: int) -> None:
        s = self.stats
        if size is not None:
            s["size-directories"] += size
            s["largest-directory"] = max(s["largest-directory"], size)
        s["largest-directory-children"] = max(s["largest-directory-children"], children)

    def which_bucket(self, size: int) -> tuple[int, int]:
        i = 0
        while True:
            if i >= len(self.buckets):
                lower = self.buckets[i - 1][1] + 1
                self.buckets.append((lower, int(next_power_of_k(lower, ROOT))))
            low, high = self.buckets[i]
            if low <= size <= high:
                return low, high
            i += 1

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"api-version": API_VERSION, **self.stats}
        out["size-files-histogram"] = sorted(
            [low, high, count] for (low, high), count in self.histogram.items()
        )
        return out
