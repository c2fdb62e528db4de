"""Check results, shaped as Tahoe-LAFS 1.20's, so scripts written for Tahoe read them.

``CheckResults`` is one check of one object (``json_check_results`` in
Tahoe's ``web/check_results.py``); ``CheckReport`` is what ``check`` returns:
the results before, whether a repair was attempted and worked, and the
results after (``json_check_and_repair_results`` when a repair was asked
for). Servers are named by their server id (Tahoe's ``get_longname``);
storage indexes in Tahoe's base32. Nothing here holds a secret: a storage
index is public, and no cap is kept.

Not here: how the numbers are found (``veil.services.checker.immutable`` and
``mutable``) or deep traversal (``deep``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veil.formats import base32
from veil.formats.placement import happiness


@dataclass
class CheckResults:
    """One check of one file or directory (immutable or mutable)."""

    storage_index: bytes  # b"" for a LIT cap (nothing on the grid)
    needed: int = 0
    expected: int = 0
    sharemap: dict[int, set[str]] = field(default_factory=dict)  # good shares only
    servers_responding: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, int]] = field(default_factory=list)  # (server id, share)
    recoverable_versions: int = 0
    unrecoverable_versions: int = 0
    wrong_shares: int = 0  # mutable: good shares of another version
    problems: list[str] = field(default_factory=list)  # mutable: what makes it unhealthy
    seqnum: int | None = None  # mutable: the best version's sequence number
    version_name: str | None = None  # mutable: Tahoe's ``seqN-ROOT`` of the best version
    literal: bool = False
    mutable: bool = False

    @property
    def shares_good(self) -> int:
        return len(self.sharemap)

    @property
    def good_share_hosts(self) -> int:
        return len({s for servers in self.sharemap.values() for s in servers})

    @property
    def happiness(self) -> int:
        return happiness(self.sharemap)

    @property
    def recoverable(self) -> bool:
        return self.literal or self.recoverable_versions > 0

    @property
    def healthy(self) -> bool:
        """Tahoe's rule: every one of the N shares is good (mutable: and exactly
        one version is recoverable and none is unrecoverable)."""
        if self.literal:
            return True
        if self.mutable:
            return (
                self.recoverable_versions == 1
                and self.unrecoverable_versions == 0
                and self.shares_good >= self.expected
            )
        return self.expected > 0 and self.shares_good == self.expected

    @property
    def summary(self) -> str:
        if self.healthy:
            return "Healthy"
        if self.mutable:
            return "Unhealthy: " + " ".join(self.problems or ["not healthy"])
        return f"Not Healthy: {self.shares_good} shares (enc {self.needed}-of-{self.expected})"

    def share_name(self, shnum: int) -> str:
        """A share as Tahoe's sharemap names it: its number, or for a mutable
        file ``seq<seqnum>-<first 4 base32 chars of the root hash>-sh<number>``."""
        return f"{self.version_name}-sh{shnum}" if self.version_name else str(shnum)

    def counts_json(self) -> dict[str, Any]:
        si = base32.b2a(self.storage_index)
        return {
            "count-happiness": self.happiness,
            "count-shares-good": self.shares_good,
            "count-shares-needed": self.needed,
            "count-shares-expected": self.expected,
            "count-good-share-hosts": self.good_share_hosts,
            "count-corrupt-shares": len(self.corrupt),
            "list-corrupt-shares": [[s, si, n] for s, n in self.corrupt],
            "servers-responding": sorted(self.servers_responding),
            "sharemap": {self.share_name(n): sorted(s) for n, s in sorted(self.sharemap.items())},
            "count-wrong-shares": self.wrong_shares,
            "count-recoverable-versions": self.recoverable_versions,
            "count-unrecoverable-versions": self.unrecoverable_versions,
        }

    def to_tahoe_json(self) -> dict[str, Any]:
        """Tahoe's ``json_check_results``."""
        if self.literal:
            return {"storage-index": "", "results": {"healthy": True}}
        results = self.counts_json()
        results["healthy"] = self.healthy
        results["recoverable"] = self.recoverable
        return {
            "storage-index": base32.b2a(self.storage_index),
            "summary": self.summary,
            "results": results,
        }


@dataclass
class CheckReport:
    """What ``veil.services.checker.check`` returns for one object."""

    pre: CheckResults
    repair_requested: bool = False
    repair_attempted: bool = False
    repair_successful: bool = False
    post: CheckResults | None = None
    repair_problem: str = ""  # why a repair could not be done, for people
    leases_renewed: int = 0  # servers that renewed (or added) a lease
    repaired_shares: int = 0  # shares written by the repair

    @property
    def final(self) -> CheckResults:
        """The state the object is left in."""
        return self.post if self.post is not None else self.pre

    def to_tahoe_json(self) -> dict[str, Any]:
        """``json_check_results``, or ``json_check_and_repair_results`` with a repair."""
        if not self.repair_requested:
            return self.pre.to_tahoe_json()
        if self.pre.literal:
            return {"storage-index": "", "repair-attempted": False}
        return {
            "storage-index": base32.b2a(self.pre.storage_index),
            "repair-attempted": self.repair_attempted,
            "repair-successful": self.repair_successful,
            "pre-repair-results": self.pre.to_tahoe_json(),
            "post-repair-results": self.final.to_tahoe_json(),
        }
