"""Deep check: every file and directory reachable from a root, with totals.

The tree is walked breadth first from the root directory (children listed
from the best version of each directory, each object checked once even when
linked twice, as in Tahoe), with a bounded number of objects in flight. Each
object gets ``veil.services.checker.check`` with the same flags, so a deep
repair repairs every unhealthy object and ``add_lease`` renews the whole
tree. LIT files hold their data in the cap: they are counted in the stats,
not checked (as in Tahoe). The totals are Tahoe's deep-check JSON
(``to_tahoe_json``); the per-object reports stay in ``objects``.

Not here: trees the caller cannot list (a renewal cap's verify caps are a
flat list: ``veil.services.renewal``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from veil.errors import VeilError
from veil.formats import base32, cap_display
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, LiteralCap, UnknownCap
from veil.services.checker.api import GridSession, check
from veil.services.checker.results import CheckReport
from veil.services.directories import Directories
from veil.services.immutable.downloader import Downloader
from veil.services.mutable.files import MutableFiles

IN_FLIGHT = 16
Path = tuple[str, ...]


@dataclass
class DeepCheckReport:
    root_storage_index: bytes
    repair_requested: bool
    objects: list[tuple[Path, CheckReport]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    unlistable: list[tuple[Path, str]] = field(default_factory=list)  # (dir, why)

    def count(self, pred: Callable[[CheckReport], bool]) -> int:
        return sum(1 for _, r in self.objects if pred(r))

    @property
    def all_healthy(self) -> bool:
        return not self.unlistable and all(r.final.healthy for _, r in self.objects)

    def to_tahoe_json(self) -> dict[str, Any]:
        """Tahoe's deep-check (or deep-check-and-repair) results JSON."""

        def corrupt(pre: bool) -> list[list[Any]]:
            return [
                [s, base32.b2a(r.pre.storage_index), n]
                for _, r in self.objects
                for s, n in (r.pre if pre else r.final).corrupt
            ]

        data: dict[str, Any] = {
            "finished": True,
            "root-storage-index": base32.b2a(self.root_storage_index),
            "count-objects-checked": len(self.objects),
        }
        if not self.repair_requested:
            data["count-objects-healthy"] = self.count(lambda r: r.pre.healthy)
            data["count-objects-unhealthy"] = self.count(lambda r: not r.pre.healthy)
            data["count-corrupt-shares"] = sum(len(r.pre.corrupt) for _, r in self.objects)
            data["list-corrupt-shares"] = corrupt(True)
        else:
            data["count-objects-healthy-pre-repair"] = self.count(lambda r: r.pre.healthy)
            data["count-objects-unhealthy-pre-repair"] = self.count(lambda r: not r.pre.healthy)
            data["count-objects-healthy-post-repair"] = self.count(lambda r: r.final.healthy)
            data["count-objects-unhealthy-post-repair"] = self.count(lambda r: not r.final.healthy)
            data["count-repairs-attempted"] = self.count(lambda r: r.repair_attempted)
            data["count-repairs-successful"] = self.count(lambda r: r.repair_successful)
            data["count-repairs-unsuccessful"] = self.count(
                lambda r: r.repair_attempted and not r.repair_successful
            )
            pre = sum(len(r.pre.corrupt) for _, r in self.objects)
            data["count-corrupt-shares-pre-repair"] = pre
            data["count-corrupt-shares-post-repair"] = sum(
                len(r.final.corrupt) for _, r in self.objects
            )
            data["list-corrupt-shares"] = corrupt(True)
            data["list-remaining-corrupt-shares"] = corrupt(False)
        data["list-unhealthy-files"] = [
            [list(path), r.pre.to_tahoe_json()] for path, r in self.objects if not r.pre.healthy
        ]
        data["stats"] = dict(self.stats)
        return data


def _stat(stats: dict[str, int], key: str, add: int = 1) -> None:
    stats[key] = stats.get(key, 0) + add


def _storage_index(cap: mc.FileCap | mc.DirCap) -> bytes | None:
    return cap_display.storage_index(cap)


async def deep_check(
    session: GridSession,
    root: mc.DirCap | str,
    *,
    verify: bool = False,
    repair: bool = False,
    add_lease: bool = False,
    progress: Callable[[Path, CheckReport], None] | None = None,
) -> DeepCheckReport:
    """Check everything below (and including) ``root``."""
    cap = mc.parse_user_cap(root) if isinstance(root, str) else root
    files = MutableFiles(session.broker, session.params, lease_secret=session.lease_secret())
    dirs = Directories(files, Downloader(session.broker))
    report = DeepCheckReport(_storage_index(cap) or b"", repair)
    seen: set[bytes] = set()
    gate = asyncio.Semaphore(IN_FLIGHT)
    tasks: list[asyncio.Task[None]] = []

    def visit(path: Path, node: mc.FileCap | mc.DirCap) -> None:
        si = _storage_index(node)
        if si is not None:
            if si in seen:
                return
            seen.add(si)
        tasks.append(asyncio.ensure_future(one(path, node)))

    async def one(path: Path, node: mc.FileCap | mc.DirCap) -> None:
        file = node.file if isinstance(node, mc.DirCap) else node
        is_dir = isinstance(node, mc.DirCap)
        _count_stats(report.stats, file, is_dir)
        async with gate:
            if not isinstance(file, LiteralCap):
                result = await check(
                    session, node, verify=verify, repair=repair, add_lease=add_lease
                )
                report.objects.append((path, result))
                if progress is not None:
                    progress(path, result)
            if not is_dir:
                return
            assert isinstance(node, mc.DirCap)
            try:
                children = await dirs.children(node)
            except VeilError as exc:
                report.unlistable.append((path, str(exc)))
                return
        for name, entry in sorted(children.items()):
            child = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
            if isinstance(child, UnknownCap):
                _stat(report.stats, "count-unknown")
                continue
            visit((*path, name), child)

    visit((), cap)
    while tasks:
        batch, tasks[:] = list(tasks), []
        await asyncio.gather(*batch)
    return report


def _count_stats(stats: dict[str, int], file: object, is_dir: bool) -> None:
    if is_dir:
        _stat(stats, "count-directories")
        return
    _stat(stats, "count-files")
    if isinstance(file, LiteralCap):
        _stat(stats, "count-literal-files")
        _stat(stats, "size-literal-files", len(file.data))
    elif isinstance(file, CHKReadCap):
        _stat(stats, "count-immutable-files")
        _stat(stats, "size-immutable-files", file.size)
        stats["largest-immutable-file"] = max(stats.get("largest-immutable-file", 0), file.size)
    else:
        _stat(stats, "count-mutable-files")
