"""The SDMF server map: which shares of which version each server holds.

Built by ``veil.services.mutable.files`` from verified shares; a read needs
its best recoverable version, a write its checkstrings as tests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
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


class RecentWrites:
    """The server maps of this client's own latest SDMF writes, by storage index.

    The next change of the same file soon after (``FRESH`` seconds: a running
    node's commands, a backup's ``Archives`` and ``Latest``) starts from what was
    written instead of asking every server, one round fewer. Each map is taken
    once: if anybody wrote since, that change's tests fail, nothing is written,
    and its retry asks afresh. A write that did not land every share it
    planned leaves nothing here. Never used for reads, which must see others'.
    """

    FRESH = 60.0
    LIMIT = 64  # files remembered (a map holds the shares: a directory's bytes each)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._maps: OrderedDict[bytes, tuple[float, ServerMap]] = OrderedDict()

    def keep(self, si: bytes, written: ServerMap) -> None:
        self._maps.pop(si, None)
        self._maps[si] = (self._clock(), written)
        while len(self._maps) > self.LIMIT:
            self._maps.popitem(last=False)

    def forget(self, si: bytes) -> None:
        self._maps.pop(si, None)

    def take(self, si: bytes) -> ServerMap | None:
        kept = self._maps.pop(si, None)
        if kept is None or self._clock() - kept[0] > self.FRESH:
            return None
        return kept[1]

    def __len__(self) -> int:
        return len(self._maps)


def first_share(version: dict[int, Seen]) -> sdmf.SDMFShare:
    share = next(iter(version.values())).share
    assert share is not None
    return share
