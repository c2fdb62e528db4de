"""``renew``: what a renewal cap's holder runs to keep a tree alive.

Reads the pointer and the verify-cap list (keeping a copy of the list in
the holder's node, so a lost pointer does not stop the care), then, for the
list itself, the pointer and every verify cap on the list: adds or renews a
lease on every server holding shares (under the renewal cap's secret),
checks, and repairs what is unhealthy onto healthy servers. Immutable files
and directories are rebuilt from their verify caps; a mutable object can be
renewed but not placed anew (that needs its write cap), which the report
says for each one.

The totals are Tahoe's deep-check-and-repair JSON (``DeepCheckReport``),
with paths ``("#3",)`` (the list's order: there are no names).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from veil.errors import VeilError
from veil.formats import base32
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap
from veil.formats.params import EncodingParameters
from veil.services.broker import StorageBroker
from veil.services.checker.api import check
from veil.services.checker.deep import DeepCheckReport
from veil.services.checker.results import CheckReport
from veil.services.immutable.downloader import Downloader
from veil.services.mutable.files import MutableFiles
from veil.services.renewal import listing
from veil.services.renewal.cap import RenewalCap

IN_FLIGHT = 16


@dataclass
class RenewalSession:
    """A ``GridSession`` whose lease secret is the renewal cap's."""

    broker: StorageBroker
    params: EncodingParameters
    secret: bytes

    def lease_secret(self) -> bytes:
        return self.secret


def _cache_path(cache_dir: Path, cap: RenewalCap) -> Path:
    return cache_dir / f"{base32.b2a(cap.pointer.storage_index)}.list"


async def current_list(
    session: RenewalSession, cap: RenewalCap, cache_dir: Path | None
) -> tuple[CHKReadCap | None, list[listing.VerifyCap], str]:
    """(list read cap or None, verify caps, where they came from)."""
    files = MutableFiles(session.broker, session.params, lease_secret=session.secret)
    try:
        list_cap, caps = await listing.read(files, Downloader(session.broker), cap.pointer)
    except VeilError:
        if cache_dir is None or not _cache_path(cache_dir, cap).exists():
            raise
        text = _cache_path(cache_dir, cap).read_text().splitlines()
        return None, listing.unpack("\n".join(text[1:]).encode()), "the cached copy"
    if cache_dir is not None:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = list_cap.to_string() + "\n" + listing.pack(caps).decode()
        tmp = _cache_path(cache_dir, cap).with_suffix(".tmp")
        tmp.write_text(body)
        tmp.chmod(0o600)
        tmp.replace(_cache_path(cache_dir, cap))
    return list_cap, caps, "the grid"


async def renew(
    session: RenewalSession,
    cap: RenewalCap,
    *,
    cache_dir: Path | None = None,
    verify: bool = False,
    repair: bool = True,
    progress: Callable[[tuple[str, ...], CheckReport], None] | None = None,
) -> DeepCheckReport:
    list_cap, caps, _ = await current_list(session, cap, cache_dir)
    targets: list[tuple[tuple[str, ...], mc.FileCap | mc.DirCap]] = [
        (("#pointer",), cap.pointer.verify_cap())
    ]
    if list_cap is not None:
        targets.append((("#list",), list_cap.verify_cap()))
    targets.extend(((f"#{i}",), c) for i, c in enumerate(caps))
    report = DeepCheckReport(cap.pointer.storage_index, repair)
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(path: tuple[str, ...], target: mc.FileCap | mc.DirCap) -> None:
        async with gate:
            result = await check(session, target, verify=verify, repair=repair, add_lease=True)
        report.objects.append((path, result))
        if progress is not None:
            progress(path, result)

    await asyncio.gather(*(one(p, t) for p, t in targets))
    report.objects.sort(key=lambda pr: pr[0])
    report.stats = {"count-objects-listed": len(caps)}
    return report
