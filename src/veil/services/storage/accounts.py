"""Accounting on a storage server: who holds how much, and quota decisions.

Tahoe's HTTP storage protocol is anonymous: every client presents the one
swissnum of the server's announcement, and renew secrets are unlinkable per
file. veil accounts by swissnum instead: the operator gives a friend an
*account* (``veil account add``), a swissnum of its own in a NURL with the
server's address and pin (``veil.adapters.node.accounts``). Requests made
with it act for that account; requests with the announced swissnum act for
account 0, "anonymous".

Each lease records its account in Tahoe's ``owner_num`` field: account 0
writes Tahoe's own numbers (0 for allocations, 1 for ``add_lease`` and
mutable writes: byte for byte what Tahoe 1.20 writes), account ``N`` (from
``FIRST_ACCOUNT`` up, never reused) writes ``N``. So owner numbers 0 and 1
are both "anonymous", and a share written by a Tahoe server counts as
anonymous. A share counts toward every account holding a lease on it.

The figures come from the lease index (``veil.services.storage.expiry``),
never from a walk of the store. Quotas are checked when new shares are
allocated and when a mutable write grows a slot: an allocation whose new
shares do not all fit is refused whole (``QuotaExceeded``, HTTP 507 with a
body starting "over quota"); leases on shares already stored are always
granted (renewing must keep working, whatever the quota).

Not here: the accounts file and swissnums (``veil.adapters.node.accounts``), HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from veil.errors import QuotaExceeded

ANONYMOUS = 0
FIRST_ACCOUNT = 2  # owner numbers 0 and 1 are Tahoe's own, so anonymous


def account_of_owner(owner_num: int) -> int:
    """The account a lease's ``owner_num`` belongs to."""
    return ANONYMOUS if owner_num < FIRST_ACCOUNT else owner_num


def lease_owner(account: int, tahoe_owner: int) -> int:
    """The ``owner_num`` a lease made for ``account`` carries, where Tahoe would
    write ``tahoe_owner`` (0 for allocations, 1 for add_lease and mutable writes)."""
    return tahoe_owner if account == ANONYMOUS else account


@dataclass(frozen=True)
class Usage:
    shares: int = 0
    bytes: int = 0

    def plus(self, shares: int, size: int) -> Usage:
        return Usage(self.shares + shares, self.bytes + size)


class UsageSource(Protocol):
    """Where the per-account figures come from (the lease index)."""

    def account_usage(self) -> dict[int, Usage]: ...


@dataclass(frozen=True)
class AccountLimits:
    """What the operator set: each account's name and quota (None: no quota)."""

    names: Mapping[int, str] = field(default_factory=dict)
    quotas: Mapping[int, int | None] = field(default_factory=dict)

    def name_of(self, account: int) -> str:
        if account == ANONYMOUS:
            return "anonymous"
        return self.names.get(account, f"(removed account {account})")


def show_size(n: int) -> str:
    """Bytes for people: ``950 B``, ``12.3 MB`` (powers of 1000, as ``parse_size``)."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def quota_problem(limits: AccountLimits, account: int, used: int, needed: int) -> str | None:
    """Why storing ``needed`` more bytes for ``account`` (holding ``used``) is
    refused, or None when it fits the account's quota (or there is none)."""
    quota = limits.quotas.get(account)
    if quota is None or needed <= 0 or used + needed <= quota:
        return None
    if account == ANONYMOUS:
        if quota == 0:
            return (
                f"{QuotaExceeded.MARK}: this server takes no new shares from anonymous "
                "clients (ask its operator for an account)"
            )
        who = "anonymous clients hold"
    else:
        if quota == 0:
            return f"{QuotaExceeded.MARK}: account {limits.name_of(account)!r} may store nothing"
        who = f"account {limits.name_of(account)!r} holds"
    return (
        f"{QuotaExceeded.MARK}: {who} {show_size(used)} of a {show_size(quota)} quota "
        f"on this server; these shares need {show_size(needed)} more"
    )


class Accounting:
    """The server core's view: usage from the index, limits from the operator."""

    def __init__(self, usage: UsageSource, limits: Callable[[], AccountLimits]) -> None:
        self.usage = usage
        self.limits = limits

    def admit(self, account: int, *, pending: int, needed: int) -> None:
        """Raise ``QuotaExceeded`` unless ``needed`` more bytes fit the account's
        quota, counting what it holds and ``pending`` (its uploads in progress)."""
        limits = self.limits()
        if limits.quotas.get(account) is None or needed <= 0:
            return
        held = self.usage.account_usage().get(account, Usage())
        problem = quota_problem(limits, account, held.bytes + pending, needed)
        if problem is not None:
            raise QuotaExceeded(problem)

    def figures(self) -> list[dict[str, Any]]:
        return account_figures(self.limits(), self.usage.account_usage())


def account_figures(limits: AccountLimits, usage: Mapping[int, Usage]) -> list[dict[str, Any]]:
    """One entry per account (every named one, anonymous, and any removed one
    still holding leases): number, name, shares, bytes, quota (None: no quota)."""
    numbers = sorted({ANONYMOUS, *limits.names, *usage})
    return [
        {
            "account": n,
            "name": limits.name_of(n),
            "shares": usage.get(n, Usage()).shares,
            "bytes": usage.get(n, Usage()).bytes,
            "quota": limits.quotas.get(n),
        }
        for n in numbers
    ]
