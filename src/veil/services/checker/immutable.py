"""Check and verify an immutable (CHK) file from its verify cap.

``check_immutable`` asks every server of the grid which shares of the storage
index it holds (Tahoe's checker asks them all, not only the first 2N of the
ring), optionally adds or renews a lease on each server that holds some
(``add_lease``), and with ``verify`` reads every share whole and checks its
UEB, hash trees and every block against the cap, reporting corrupt shares to
their servers. Without ``verify`` a share counts as good when it is listed,
as in Tahoe. The read key is never needed: a ``CHKVerifyCap`` is enough.

Not here: regenerating shares (``veil.services.checker.immutable_repair``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from veil.errors import IntegrityError, VeilError
from veil.formats.caps import CHKVerifyCap
from veil.formats.decoder import FIRST_READ_SIZE, ShareValidator, trailer_range
from veil.services.broker import StorageBroker
from veil.services.checker.results import CheckResults
from veil.services.interfaces import StorageClient

CALL_TIMEOUT = 30.0
LeaseSecrets = Callable[[bytes, bytes], tuple[bytes, bytes]]  # (SI, lease seed) → secrets


async def renew_lease(server: StorageClient, si: bytes, secrets: LeaseSecrets) -> int:
    """Add or renew this client's lease on ``si`` at ``server``: 1 if done, 0 if
    the server refused or did not answer (the check goes on)."""
    renew, cancel = secrets(si, server.lease_seed)
    try:
        await asyncio.wait_for(
            server.add_or_renew_lease(si, renew_secret=renew, cancel_secret=cancel), CALL_TIMEOUT
        )
    except (VeilError, TimeoutError):
        return 0
    return 1


@dataclass
class CheckedShare:
    """A share that verified: its server, validator and raw header and trailer."""

    server: StorageClient
    shnum: int
    validator: ShareValidator
    head: bytes
    trailer: bytes


@dataclass
class ImmutableCheck:
    results: CheckResults
    held: dict[str, set[int]] = field(default_factory=dict)  # every listed share
    verified: list[CheckedShare] = field(default_factory=list)  # with ``verify``
    leases: int = 0  # servers that added or renewed a lease


async def read_share_head(
    server: StorageClient, cap: CHKVerifyCap, shnum: int
) -> tuple[ShareValidator, bytes, bytes]:
    """(validator with its trailer checked, header bytes, trailer bytes)."""
    si = cap.storage_index
    head = await asyncio.wait_for(
        server.read_share_chunk(si, shnum, 0, FIRST_READ_SIZE), CALL_TIMEOUT
    )
    validator = ShareValidator(cap, shnum, head)
    tr = trailer_range(validator.layout)
    if tr.offset + tr.length <= len(head) or len(head) < FIRST_READ_SIZE:
        trailer = head[tr.offset : tr.offset + tr.length]
    else:
        trailer = await asyncio.wait_for(
            server.read_share_chunk(si, shnum, tr.offset, tr.length), CALL_TIMEOUT
        )
    validator.validate_trailer(trailer)
    return validator, head, trailer


async def read_block(
    server: StorageClient, validator: ShareValidator, head: bytes, segnum: int
) -> bytes:
    """One block of a validated share, checked against its block hash tree."""
    offset, length = validator.block_offset(segnum)
    if offset + length <= len(head):
        block = head[offset : offset + length]
    else:
        si = validator.cap.storage_index
        block = await asyncio.wait_for(
            server.read_share_chunk(si, validator.shnum, offset, length), CALL_TIMEOUT
        )
    validator.check_block(segnum, block)
    return block


async def _verify_share(server: StorageClient, cap: CHKVerifyCap, shnum: int) -> CheckedShare:
    validator, head, trailer = await read_share_head(server, cap, shnum)
    for segnum in range(validator.geometry.num_segments):
        await read_block(server, validator, head, segnum)
    return CheckedShare(server, shnum, validator, head, trailer)


async def check_immutable(
    broker: StorageBroker,
    cap: CHKVerifyCap,
    *,
    verify: bool = False,
    add_lease: LeaseSecrets | None = None,
) -> ImmutableCheck:
    """Where the shares of ``cap`` are, and (``verify``) which of them are good."""
    si = cap.storage_index
    out = ImmutableCheck(CheckResults(si, cap.needed_shares, cap.total_shares))
    res = out.results

    async def one(server: StorageClient) -> None:
        try:
            shares = await asyncio.wait_for(server.list_shares(si), CALL_TIMEOUT)
        except (VeilError, TimeoutError):
            return
        res.servers_responding.append(server.server_id)
        shares = frozenset(s for s in shares if s < cap.total_shares)
        out.held[server.server_id] = set(shares)
        if add_lease is not None and shares:
            out.leases += await renew_lease(server, si, add_lease)
        for shnum in sorted(shares):
            if not verify:
                res.sharemap.setdefault(shnum, set()).add(server.server_id)
                continue
            try:
                checked = await _verify_share(server, cap, shnum)
            except IntegrityError as exc:
                res.corrupt.append((server.server_id, shnum))
                try:
                    await asyncio.wait_for(server.advise_corrupt_share(si, shnum, str(exc)), 10)
                except (VeilError, TimeoutError):
                    pass
                continue
            except (VeilError, TimeoutError):
                continue  # the server failed mid-read: not counted either way
            out.verified.append(checked)
            res.sharemap.setdefault(shnum, set()).add(server.server_id)

    await asyncio.gather(*(one(s) for s in broker.servers))
    res.corrupt.sort()
    if res.shares_good >= cap.needed_shares:
        res.recoverable_versions = 1
    else:
        res.unrecoverable_versions = 1
    return out
