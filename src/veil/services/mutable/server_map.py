"""The SDMF server map: which shares of which version each server holds.

Built by ``veil.services.mutable.files`` from verified shares; a read needs
its best recoverable version, a write its checkstrings as tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from veil.formats import sdmf
from veil.services.interfaces import StorageClient
from veil.services.mutable.retry import Marker

READ_MARGIN = 2  # servers asked beyond k for a read, before the rest of the ring


@dataclass
class Seen:
    server: StorageClient
    shnum: int
    checkstring: bytes
    share: sdmf.SDMFShare | None  # None: present but corrupt


@dataclass
class ServerMap:
    seen: list[Seen] = field(default_factory=list)

    def versions(self) -> dict[bytes, dict[int, Seen]]:
        out: dict[bytes, dict[int, Seen]] = {}
        for s in self.seen:
            if s.share is not None:
                out.setdefault(s.share.signed_prefix(), {}).setdefault(s.shnum, s)
        return out

    def best(self) -> dict[int, Seen] | None:
        """The recoverable version with the highest (seqnum, root hash), if any."""
        good = [v for v in self.versions().values() if len(v) >= first_share(v).k]
        if not good:
            return None
        return max(good, key=lambda v: (first_share(v).seqnum, first_share(v).root_hash))

    def highest_seqnum(self) -> int:
        return max((s.share.seqnum for s in self.seen if s.share is not None), default=0)

    def newer_than(self, seqnum: int) -> Marker:
        """Good shares with a higher seqnum than the best version's: an unfinished
        publish (or the remains of a dead writer)."""
        return frozenset(
            (s.server.server_id, s.shnum, s.checkstring)
            for s in self.seen
            if s.share is not None and s.share.seqnum > seqnum
        )

    def tests(self) -> list[tuple[StorageClient, int, bytes]]:
        return [(s.server, s.shnum, s.checkstring) for s in self.seen]


def first_share(version: dict[int, Seen]) -> sdmf.SDMFShare:
    share = next(iter(version.values())).share
    assert share is not None
    return share
