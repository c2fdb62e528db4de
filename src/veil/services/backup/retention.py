"""Which snapshots ``veil forget`` keeps, pure: restic's ``forget`` policies.

Snapshots are taken newest first. ``last N`` keeps the N newest; ``hourly``
/ ``daily`` / ``weekly`` / ``monthly`` / ``yearly N`` keep the newest
snapshot of each of the last N hours (days, ISO weeks, months, years) that
have one; ``within D`` keeps every snapshot made less than D before the
newest one (D like ``2y5m7d3h``: years, months, days, hours; a month is 30
days and a year 365, as restic counts). A snapshot is kept when any policy
keeps it. Snapshot times are UTC, as their names are (restic uses local
time); with no policy at all nothing is chosen (the caller refuses).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from veil.errors import UsageError

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?(?:(\d+)h)?$")
HOUR = 3600.0


@dataclass(frozen=True)
class Policy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: float = 0.0  # seconds

    @property
    def empty(self) -> bool:
        return (
            not any((self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly))
            and not self.within
        )


def parse_duration(text: str) -> float:
    """``2y5m7d3h`` in seconds."""
    m = _DURATION.match(text.strip())
    if not m or not text.strip():
        raise UsageError(
            f"{text!r} is not a duration", hint="write it like 7d, 2m or 1y6m (y, m, d, h)"
        )
    y, mo, d, h = (int(g or 0) for g in m.groups())
    return ((y * 365 + mo * 30 + d) * 24 + h) * HOUR


def _utc(t: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(t, datetime.UTC)


def _bucket(kind: str) -> Callable[[float], tuple[int, ...]]:
    def key(t: float) -> tuple[int, ...]:
        d = _utc(t)
        if kind == "hourly":
            return (d.year, d.month, d.day, d.hour)
        if kind == "daily":
            return (d.year, d.month, d.day)
        if kind == "weekly":
            iso = d.isocalendar()
            return (iso.year, iso.week)
        if kind == "monthly":
            return (d.year, d.month)
        return (d.year,)

    return key


def choose(snapshots: Sequence[tuple[str, float]], policy: Policy) -> dict[str, list[str]]:
    """The snapshots (name, time) to keep, each with the reasons; the others go."""
    newest_first = sorted(snapshots, key=lambda s: (s[1], s[0]), reverse=True)
    keep: dict[str, list[str]] = {}
    if policy.empty:
        return keep

    def reason(name: str, why: str) -> None:
        keep.setdefault(name, []).append(why)

    for name, _ in newest_first[: policy.last]:
        reason(name, "last")
    for kind in ("hourly", "daily", "weekly", "monthly", "yearly"):
        left = int(getattr(policy, kind))
        key = _bucket(kind)
        last_bucket: tuple[int, ...] | None = None
        for name, when in newest_first:
            if left <= 0:
                break
            bucket = key(when)
            if bucket != last_bucket:
                reason(name, kind)
                last_bucket = bucket
                left -= 1
    if policy.within and newest_first:
        newest = newest_first[0][1]
        for name, when in newest_first:
            if newest - when < policy.within:
                reason(name, "within")
    return keep


__all__ = ["Policy", "choose", "parse_duration"]
