"""Choosing servers for an upload and keeping track of them while it runs.

``plan_placement`` asks the first 2N servers of the permuted ring whether they
can take the share size (cached versions) and what they hold, places shares with
``veil.formats.placement`` and allocates buckets, looping while happiness is
short and something changed (digest §4.3). The resulting ``PlacementPlan``
knows which server writes which share, drops servers that fail, and aborts
everything unfinished when the upload is given up.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass

from veil.errors import (
    QuotaExceeded,
    ServerFull,
    ServerUnavailable,
    StorageError,
    UnhappinessError,
    VeilError,
)
from veil.formats.params import EncodingParameters
from veil.formats.placement import happiness, place_shares
from veil.services.broker import StorageBroker
from veil.services.interfaces import StorageClient, WriteResult
from veil.services.patience import PATIENCE, gather_patiently
from veil.services.server_failures import PinMismatch, Stalled, entry, summary

SecretsFor = Callable[[bytes], tuple[bytes, bytes]]
MAX_ROUNDS = 4
CALL_TIMEOUT = 15.0  # one list or allocate call, even with no other server to compare


@dataclass
class _Bucket:
    server: StorageClient
    upload_secret: bytes
    live: bool = True


class PlacementPlan:
    """Where each share goes, and which servers already held which shares."""

    def __init__(self, storage_index: bytes, params: EncodingParameters) -> None:
        self.storage_index = storage_index
        self.params = params
        self.buckets: dict[int, _Bucket] = {}  # shares we must write
        self.existing: dict[int, set[str]] = {}  # shares already stored somewhere
        self.failed: dict[str, BaseException] = {}  # server id → why it was dropped
        self.asked = 0  # servers considered

    @property
    def failures(self) -> list[str]:
        return [entry(sid, exc) for sid, exc in self.failed.items()]

    def fail(self, server_id: str, exc: BaseException) -> None:
        self.failed[server_id] = exc

    def shares_to_write(self) -> list[int]:
        return sorted(self.buckets)

    def is_live(self, shnum: int) -> bool:
        b = self.buckets.get(shnum)
        return b is not None and b.live

    def holders(self) -> dict[int, set[str]]:
        out = {sh: set(servers) for sh, servers in self.existing.items()}
        for sh, b in self.buckets.items():
            if b.live:
                out.setdefault(sh, set()).add(b.server.server_id)
        return out

    def happiness(self) -> int:
        return happiness(self.holders())

    def placements(self) -> dict[int, str]:
        return {sh: sorted(servers)[0] for sh, servers in sorted(self.holders().items())}

    def check_happy(self) -> None:
        got = self.happiness()
        if got < self.params.happy:
            errors = list(self.failed.values())
            lead = summary(errors, self.asked)
            if any(isinstance(e, QuotaExceeded) for e in errors):
                hint = "ask the server's operator for a larger quota, or add servers"
            elif any(isinstance(e, ServerFull) for e in errors):
                hint = "free space on the storage servers (or lower reserved_space), or add servers"
            elif any(isinstance(e, PinMismatch) for e in errors):
                hint = (
                    "a server's certificate must match the SPKI hash in its NURL: check the NURLs"
                )
            else:
                hint = "start more storage servers, or lower shares.happy"
            raise UnhappinessError(
                (f"{lead}; " if lead else "")
                + f"shares could be placed on only {got} server(s) such that any "
                f"{self.params.needed} of them have enough shares to recover the file, "
                f"but we were asked to place shares on at least {self.params.happy}",
                hint=hint
                + (f"; failures: {'; '.join(self.failures[:3])}" if self.failures else ""),
            )

    async def write(self, shnum: int, offset: int, data: bytes | memoryview) -> WriteResult:
        b = self.buckets[shnum]
        return await b.server.write_share_chunk(
            self.storage_index, shnum, offset, data, upload_secret=b.upload_secret
        )

    async def lose_server_of(self, shnum: int, error: VeilError) -> None:
        """A write failed: drop every share of that server, then re-check happiness.

        A server that stopped answering (``Stalled``) is not asked to abort:
        it would not answer that either, and drops idle uploads by itself.
        """
        server = self.buckets[shnum].server
        self.fail(server.server_id, error)
        for b in self.buckets.values():
            if b.server is server and b.live:
                b.live = False
        if not isinstance(error, Stalled):
            await self._abort([(sh, b) for sh, b in self.buckets.items() if b.server is server])
        self.check_happy()

    async def abort_all(self) -> None:
        await self._abort([(sh, b) for sh, b in self.buckets.items() if b.live])
        for b in self.buckets.values():
            b.live = False

    async def _abort(self, buckets: list[tuple[int, _Bucket]]) -> None:
        async def one(sh: int, b: _Bucket) -> None:
            try:
                await asyncio.wait_for(
                    b.server.abort_upload(self.storage_index, sh, upload_secret=b.upload_secret),
                    timeout=PATIENCE,
                )
            except (VeilError, TimeoutError):
                pass  # the server drops idle incoming shares by itself

        await asyncio.gather(*(one(sh, b) for sh, b in buckets))


async def plan_placement(
    broker: StorageBroker,
    storage_index: bytes,
    params: EncodingParameters,
    allocated_size: int,
    *,
    secrets: SecretsFor,
) -> PlacementPlan:
    """Find and allocate servers for every share, or raise ``UnhappinessError``."""
    plan = PlacementPlan(storage_index, params)
    candidates = broker.permuted(storage_index)[: 2 * params.total]
    plan.asked = len(candidates)
    if not candidates:
        raise UnhappinessError(
            "no storage servers are known", hint="check private/servers.yaml or the grid"
        )
    versions = await broker.versions(candidates)
    writable: list[StorageClient] = []
    readonly: list[StorageClient] = []
    for server in candidates:
        version = versions[server.server_id]
        if isinstance(version, VeilError):
            plan.fail(server.server_id, version)
            broker.forget_version(server.server_id)
        elif version.maximum_immutable_share_size >= allocated_size:
            writable.append(server)
        else:
            plan.fail(server.server_id, _no_room(version.maximum_immutable_share_size))
            readonly.append(server)
    # Writable servers say what they already hold in their allocate answer
    # ("already-have" lists every finished share), which saves a round trip;
    # read-only servers are asked directly.
    held: dict[str, set[int]] = {s.server_id: set() for s in writable}
    listing = await gather_patiently(
        [_list(s, storage_index) for s in readonly], patience=broker.patience
    )
    for server, shares in zip(list(readonly), listing, strict=True):
        if isinstance(shares, BaseException):
            if not isinstance(shares, VeilError):
                raise shares
            plan.fail(server.server_id, shares)
            readonly.remove(server)
            continue
        held[server.server_id] = set(shares)
        for sh in shares:
            if sh < params.total:
                plan.existing.setdefault(sh, set()).add(server.server_id)
    by_id = {s.server_id: s for s in candidates}
    for _ in range(MAX_ROUNDS):
        placement = (
            place_shares(
                [s.server_id for s in writable], [s.server_id for s in readonly], params.total, held
            )
            if writable
            else {}
        )
        wanted: dict[str, set[int]] = {}
        for sh, sid in placement.items():
            ro_ids = {s.server_id for s in readonly}
            if sid not in ro_ids and sh not in held.get(sid, set()) and sh not in plan.buckets:
                wanted.setdefault(sid, set()).add(sh)
        if not wanted:
            break
        results = await gather_patiently(
            [
                _allocate(by_id[sid], storage_index, shs, allocated_size, secrets)
                for sid, shs in wanted.items()
            ],
            patience=broker.patience,
        )
        changed = False
        for (sid, shs), result in zip(wanted.items(), results, strict=True):
            server = by_id[sid]
            if isinstance(result, BaseException):
                if not isinstance(result, VeilError):
                    raise result
                plan.fail(sid, result)
                writable = [s for s in writable if s.server_id != sid]
                changed = True
                continue
            upload_secret, already, allocated = result
            for sh in already:
                held.setdefault(sid, set()).add(sh)
                if sh < params.total:
                    plan.existing.setdefault(sh, set()).add(sid)
            for sh in allocated:
                plan.buckets[sh] = _Bucket(server, upload_secret)
                held.setdefault(sid, set()).add(sh)
                changed = True
            if shs - set(allocated) - set(already):
                # The server could not take them (full, or busy): stop asking it.
                if not allocated:
                    plan.fail(sid, ServerFull("refused to allocate space for a share"))
                writable = [s for s in writable if s.server_id != sid]
                readonly.append(server)
                changed = True
        if plan.happiness() >= params.happy and all(
            sh in plan.buckets or sh in plan.existing for sh in range(params.total)
        ):
            break
        if not changed:
            break
    try:
        plan.check_happy()
    except UnhappinessError:
        await plan.abort_all()
        raise
    return plan


def _no_room(room: int) -> ServerFull:
    return ServerFull(
        f"has room for only {room} bytes" if room else "has no room (full or read-only)"
    )


async def _list(server: StorageClient, storage_index: bytes) -> frozenset[int] | VeilError:
    try:
        return await asyncio.wait_for(server.list_shares(storage_index), timeout=CALL_TIMEOUT)
    except TimeoutError:
        return ServerUnavailable(f"timed out after {CALL_TIMEOUT:.0f} s listing shares")
    except VeilError as exc:
        return exc


async def _allocate(
    server: StorageClient,
    storage_index: bytes,
    shares: set[int],
    allocated_size: int,
    secrets: SecretsFor,
) -> tuple[bytes, frozenset[int], frozenset[int]] | VeilError:
    renew, cancel = secrets(server.lease_seed)
    upload_secret = os.urandom(20)
    try:
        result = await asyncio.wait_for(
            server.allocate_buckets(
                storage_index,
                frozenset(shares),
                allocated_size,
                renew_secret=renew,
                cancel_secret=cancel,
                upload_secret=upload_secret,
            ),
            timeout=CALL_TIMEOUT,
        )
    except TimeoutError:
        return ServerUnavailable(f"timed out after {CALL_TIMEOUT:.0f} s allocating")
    except (StorageError, VeilError) as exc:
        return exc
    return upload_secret, result.already_have, result.allocated
