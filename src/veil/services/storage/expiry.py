"""Server-side lease expiry by Tahoe-LAFS 1.20's rules, over a lease index.

Tahoe's ``LeaseCheckingCrawler`` (``allmydata/storage/expirer.py``) decides
per lease, with ``grant = expiry - 31 days`` and ``age = now - grant``:

    mode = age          expired when age > expire.override_lease_duration; without
                        an override Tahoe compares the age (seconds) with the
                        lease's expiry *timestamp*, so in practice nothing expires
                        — veil does exactly the same (live Tahoe decides)
    mode = cutoff-date  expired when grant < expire.cutoff_date (UTC midnight)
    expire.immutable / expire.mutable = false: leases of that kind never expire

Every rule reduces to "expired when the lease's expiry < a threshold", so the
index (``LeaseIndex``: min and max lease expiry per share) finds the shares
due without walking the disk. For each due share the expirer re-reads the
leases from the container (the source of truth: a stale index can delay a
deletion, never cause a wrong one), drops the expired leases and, when none
is left, deletes the share — at most ``delete_rate`` shares a second. Every
lease change the server makes is reported (``refresh``) so the index follows;
a lost index is rebuilt from the containers (``rebuild``), and a full
reconcile runs every ``RECONCILE_EVERY`` passes (weekly at the default pace).

Works over any backend with ``storage_indexes()`` and ``delete_share()``
(disk, memory, S3); the index adapter is ``veil.adapters.storage.lease_index``.
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from veil.errors import ConfigError, FormatError
from veil.formats.container import LEASE_DURATION
from veil.formats.mutable_container import DATA_OFFSET, parse_header
from veil.services.storage.accounts import Usage, account_of_owner
from veil.services.storage.backend import Backend

log = logging.getLogger("veil.storage.expiry")
DELETE_RATE = 100.0  # shares deleted per second, at most
RECONCILE_EVERY = 168  # passes between full re-reads of every container (a week at 1 h)
_DAY = 24 * 60 * 60
# Tahoe's units, then veil's (seconds, minutes, hours: Tahoe refuses these)
_UNITS = {"day": _DAY, "month": 31 * _DAY, "mo": 31 * _DAY, "year": 365 * _DAY}
_VEIL_UNITS = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600}


def parse_duration(text: str) -> int:
    """Tahoe's ``parse_duration`` ("60 days", "3 months", "1 year"), and seconds,
    minutes and hours as a veil extension; ``ValueError`` otherwise."""
    s = text.strip().lower()
    s = s[:-1] if s.endswith("s") else s
    for unit, seconds in (*_UNITS.items(), *_VEIL_UNITS.items()):
        if s.endswith(unit) and re.fullmatch(r"\d+", s[: -len(unit)].strip()):
            return int(s[: -len(unit)].strip()) * seconds
    raise ValueError(f"{text!r} is not a duration such as 60 days, 3 months or 1 year")


def parse_date(text: str) -> int:
    """Seconds since the epoch of the UTC midnight starting ``YYYY-MM-DD``."""
    try:
        return calendar.timegm(time.strptime(text.strip(), "%Y-%m-%d"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date such as 2026-01-31") from None


@dataclass(frozen=True)
class ExpiryPolicy:
    enabled: bool = False
    mode: str = "age"
    override: int | None = None  # seconds
    cutoff: int | None = None  # epoch seconds
    immutable: bool = True
    mutable: bool = True

    def threshold(self, now: float) -> float:
        """A lease is expired when its expiry time is below this."""
        if self.mode == "cutoff-date":
            assert self.cutoff is not None
            return self.cutoff + LEASE_DURATION
        if self.override is None:
            return (now + LEASE_DURATION) / 2  # Tahoe's age > expiry-timestamp comparison
        return now + LEASE_DURATION - self.override

    def applies_to(self, mutable: bool) -> bool:
        return self.mutable if mutable else self.immutable

    def crawl_interval(self) -> float:
        """Seconds between passes: a quarter of the override, within 1 s .. 1 h."""
        if self.override is None:
            return 3600.0
        return min(3600.0, max(1.0, self.override / 4))


def policy_from_settings(get: Callable[[str, str], str]) -> ExpiryPolicy:
    """The policy from ``[storage] expire.*`` (``get(key, default)``); ``ConfigError``
    naming the key when a value is wrong, as Tahoe refuses to start."""

    def flag(key: str, default: str) -> bool:
        return get(key, default).strip().lower() in ("true", "yes", "on", "1")

    enabled = flag("expire.enabled", "false")
    mode = get("expire.mode", "age").strip().lower() or "age"
    if mode not in ("age", "cutoff-date"):
        raise ConfigError(f"[storage] expire.mode = {mode!r}: must be age or cutoff-date")
    override = cutoff = None
    text = get("expire.override_lease_duration", "").strip()
    if text:
        try:
            override = parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"[storage] expire.override_lease_duration: {exc}") from None
    if mode == "cutoff-date":
        text = get("expire.cutoff_date", "").strip()
        if not text:
            raise ConfigError(
                "[storage] expire.mode = cutoff-date needs expire.cutoff_date (YYYY-MM-DD)"
            )
        try:
            cutoff = parse_date(text)
        except ValueError as exc:
            raise ConfigError(f"[storage] expire.cutoff_date: {exc}") from None
    return ExpiryPolicy(
        enabled,
        mode,
        override,
        cutoff,
        flag("expire.immutable", "true"),
        flag("expire.mutable", "true"),
    )


@dataclass(frozen=True)
class IndexedShare:
    storage_index: bytes
    shnum: int
    mutable: bool
    expiries: tuple[int, ...]
    size: int
    owners: tuple[int, ...] = ()  # the accounts holding a lease (accounts.account_of_owner)


@dataclass
class IndexTotals:
    shares: int = 0
    bytes: int = 0
    leases: int = 0


class LeaseIndex(Protocol):
    """Where the lease records of every share are indexed (SQLite, or memory)."""

    def put(self, share: IndexedShare) -> None: ...

    def remove(self, storage_index: bytes, shnum: int, mutable: bool) -> None: ...

    def shares_of(self, storage_index: bytes) -> list[IndexedShare]: ...

    def due(
        self, threshold: float, *, immutable: bool, mutable: bool, limit: int
    ) -> list[IndexedShare]:
        """Shares with at least one lease whose expiry is below ``threshold``."""
        ...

    def replace_all(self, shares: Iterable[IndexedShare]) -> None: ...

    def totals(self) -> IndexTotals: ...

    def account_usage(self) -> dict[int, Usage]:
        """Shares and bytes per account holding a lease on them (``accounts``)."""
        ...

    def is_fresh(self) -> bool:
        """True when the index was created empty (lost or never built)."""
        ...


class ExpiringBackend(Backend, Protocol):
    def storage_indexes(self) -> list[bytes]: ...

    def delete_share(self, storage_index: bytes, share_number: int) -> None: ...


@dataclass
class ExpiryStats:
    passes: int = 0
    last_pass: float | None = None
    leases_expired: int = 0
    shares_deleted: int = 0
    bytes_freed: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def read_share(backend: ExpiringBackend, si: bytes, shnum: int, mutable: bool) -> IndexedShare:
    """A share's lease expiries and size from its container (``KeyError``: gone)."""
    if mutable:
        try:
            header = parse_header(backend.read_slot(si, shnum, 0, DATA_OFFSET))
        except FormatError:
            raise KeyError(shnum) from None
        expiries = tuple(lease.expiry for lease in header.leases)
        owners = _accounts(lease.owner for lease in header.leases)
        return IndexedShare(si, shnum, True, expiries, header.data_length, owners)
    leases = backend.get_leases(si, shnum)
    expiries = tuple(lease.expiry for lease in leases)
    owners = _accounts(lease.owner for lease in leases)
    return IndexedShare(si, shnum, False, expiries, backend.share_length(si, shnum), owners)


def _accounts(owner_nums: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted({account_of_owner(n) for n in owner_nums}))


def shares_in(backend: ExpiringBackend, si: bytes) -> list[IndexedShare]:
    out = []
    for mutable, numbers in ((False, backend.list_shares(si)), (True, backend.list_slots(si))):
        for shnum in sorted(numbers):
            try:
                out.append(read_share(backend, si, shnum, mutable))
            except (KeyError, OSError):
                continue
    return out


class LeaseExpirer:
    """Keeps the index in step with the containers and expires leases."""

    def __init__(
        self,
        backend: ExpiringBackend,
        index: LeaseIndex,
        policy: ExpiryPolicy,
        *,
        lock: threading.RLock,
        clock: Callable[[], float] = time.time,
        delete_rate: float = DELETE_RATE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.index = index
        self.policy = policy
        self.lock = lock  # the server's: no request changes a lease while we decide
        self.clock = clock
        self.delete_rate = delete_rate
        self.sleep = sleep
        self.stats = ExpiryStats()

    def refresh(self, si: bytes, completed: int | None = None) -> None:
        """Re-index one storage index after its leases changed; ``completed``: the
        immutable share just written, the only one that changed (one file read)."""
        if completed is not None:
            try:
                self.index.put(read_share(self.backend, si, completed, False))
                return
            except (KeyError, OSError):
                pass  # gone meanwhile: look at all of them
        current = {(s.shnum, s.mutable): s for s in shares_in(self.backend, si)}
        for old in self.index.shares_of(si):
            if (old.shnum, old.mutable) not in current:
                self.index.remove(si, old.shnum, old.mutable)
        for share in current.values():
            self.index.put(share)

    def rebuild(self) -> int:
        """Index every container again (a lost or stale index); returns the shares."""
        found: list[IndexedShare] = []
        for si in self.backend.storage_indexes():
            found.extend(shares_in(self.backend, si))
        self.index.replace_all(found)
        return len(found)

    def prepare(self) -> None:
        """At start-up: rebuild a lost index (no expiry yet)."""
        if self.index.is_fresh():
            self.rebuild()

    def run_pass(self) -> ExpiryStats:
        """One pass: expire what is due (when enabled), at a bounded rate."""
        reconcile = self.stats.passes and self.stats.passes % RECONCILE_EVERY == 0
        if reconcile or self.index.is_fresh():
            self.rebuild()
        self.stats.passes += 1
        self.stats.last_pass = self.clock()
        p = self.policy
        if not p.enabled:
            return self.stats
        threshold = p.threshold(self.clock())
        due = self.index.due(threshold, immutable=p.immutable, mutable=p.mutable, limit=10**9)
        for share in due:
            if self._expire(share, threshold):
                self.sleep(1.0 / self.delete_rate)
        return self.stats

    def _expire(self, share: IndexedShare, threshold: float) -> bool:
        """Drop the expired leases of one share; True when the share was deleted."""
        si, sh = share.storage_index, share.shnum
        with self.lock:
            try:
                current = read_share(self.backend, si, sh, share.mutable)
            except (KeyError, OSError):
                self.index.remove(si, sh, share.mutable)
                return False
            expired = [e for e in current.expiries if e < threshold]
            if current.expiries and not expired:
                self.index.put(current)
                return False
            self.stats.leases_expired += len(expired)
            if len(expired) == len(current.expiries):
                if share.mutable:
                    self.backend.delete_slot(si, sh)
                else:
                    self.backend.delete_share(si, sh)
                self.index.remove(si, sh, share.mutable)
                self.stats.shares_deleted += 1
                self.stats.bytes_freed += current.size
                log.info("deleted a share whose last lease expired (%d bytes)", current.size)
                return True
            self._keep_live_leases(share.mutable, si, sh, threshold)
            self.index.put(read_share(self.backend, si, sh, share.mutable))
            return False

    def _keep_live_leases(self, mutable: bool, si: bytes, sh: int, threshold: float) -> None:
        if mutable:
            header = parse_header(self.backend.read_slot(si, sh, 0, DATA_OFFSET))
            live = tuple(lease for lease in header.leases if lease.expiry >= threshold)
            self.backend.write_slot(si, sh, [(0, replace(header, leases=live).pack())])
        else:
            leases = self.backend.get_leases(si, sh)
            self.backend.set_leases(si, sh, [x for x in leases if x.expiry >= threshold])

    def figures(self) -> dict[str, object]:
        """What the node reports (welcome JSON): held, freed, the policy."""
        t = self.index.totals()
        s = self.stats
        return {
            "shares-held": t.shares,
            "bytes-held": t.bytes,
            "leases-held": t.leases,
            "expiration-enabled": self.policy.enabled,
            "expiration-mode": self.policy.mode,
            "override-lease-duration": self.policy.override,
            "cutoff-date": self.policy.cutoff,
            "expire-immutable": self.policy.immutable,
            "expire-mutable": self.policy.mutable,
            "passes": s.passes,
            "last-pass": s.last_pass,
            "leases-expired": s.leases_expired,
            "shares-deleted": s.shares_deleted,
            "bytes-freed": s.bytes_freed,
        }
