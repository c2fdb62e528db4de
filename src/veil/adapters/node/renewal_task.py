"""Renewal caps held by this node: ``veil renew`` now, or on a schedule in ``veil run``.

``renew_from_node`` runs one renewal (``veil.services.renewal.renew``) with this
node's connections: its own servers plus those the renewal cap names. A node
keeps the caps it holds in ``private/renewals-held.yaml`` (0600; written by
``veil renew --keep``)::

    every: 6 hours            # Tahoe-style duration; veil also takes seconds
    caps: [URI:VEIL-RENEWAL:…, …]

``veil run`` re-reads that file before each round (a new cap is picked up
without a restart), renews every cap in turn, and writes one line per cap to
its log (the cap described, never shown) and the totals to
``private/renewals-held.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from veil.adapters.node.files import present, read_text, write_private
from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError, VeilError
from veil.services.checker.deep import DeepCheckReport
from veil.services.renewal.cap import RenewalCap, parse_renewal_cap
from veil.services.storage.expiry import parse_duration

log = logging.getLogger("veil.renewal")
HELD = "renewals-held.yaml"
STATUS = "renewals-held.json"
CACHE = "renewal-cache"
DEFAULT_EVERY = "6 hours"


async def renew_from_node(
    node_dir: Path, cap: RenewalCap, *, verify: bool = False, repair: bool = True
) -> DeepCheckReport:
    from veil.adapters.net.connection_policy import networks_for
    from veil.adapters.node.client_session import needs_tor, open_client, storage_client_for
    from veil.services.renewal.renew import RenewalSession, renew

    node = NodeDirectory(node_dir)
    networks = await networks_for(
        node, need_tor=any(needs_tor(s, a) for s, a in cap.servers.items())
    )
    try:
        async with open_client(node_dir) as client:
            known = {s.server_id for s in client.broker.servers}
            for sid, ann in cap.servers.items():
                if sid not in known:
                    try:
                        client.broker.add(storage_client_for(sid, ann, networks))
                    except VeilError:
                        continue
            session = RenewalSession(client.broker, client.params, cap.secret)
            return await renew(
                session, cap, cache_dir=node.private / CACHE, verify=verify, repair=repair
            )
    finally:
        await networks.close()


def read_held(node: NodeDirectory) -> tuple[float, list[RenewalCap]]:
    """(seconds between rounds, caps) from ``private/renewals-held.yaml``."""
    path = node.private / HELD
    if not present(path):
        return parse_duration(DEFAULT_EVERY), []
    try:
        doc = yaml.safe_load(read_text(path)) or {}
        every = parse_duration(str(doc.get("every", DEFAULT_EVERY)))
        caps = [parse_renewal_cap(str(c)) for c in doc.get("caps", [])]
    except (yaml.YAMLError, ValueError, AttributeError):  # no detail: it may quote a cap
        raise ConfigError(f"{path} is damaged", hint="veil renew --keep CAP rewrites it") from None
    return float(max(1, every)), caps


def keep(node: NodeDirectory, cap: RenewalCap, every: str | None) -> None:
    """Add ``cap`` to the caps ``veil run`` renews (and set the interval)."""
    path = node.private / HELD
    doc: dict[str, Any] = {}
    if present(path):
        doc = yaml.safe_load(read_text(path)) or {}
    caps = [str(c) for c in doc.get("caps", [])]
    if cap.to_string() not in caps:
        caps.append(cap.to_string())
    if every is not None:
        parse_duration(every)  # refuse a bad one now
        doc["every"] = every
    doc.setdefault("every", DEFAULT_EVERY)
    doc["caps"] = caps
    write_private(path, yaml.safe_dump(doc))


class ScheduledRenewals:
    def __init__(self, node: NodeDirectory) -> None:
        self.node = node
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while True:
            every: float = parse_duration(DEFAULT_EVERY)
            try:
                every, caps = read_held(self.node)
                rounds = {}
                for cap in caps:
                    report = await renew_from_node(self.node.path, cap)
                    data = report.to_tahoe_json()
                    rounds[str(cap)] = {k: v for k, v in data.items() if k.startswith("count-")}
                    log.info(
                        "renewed %s: %d objects, %d unhealthy after repair",
                        cap,
                        data["count-objects-checked"],
                        data["count-objects-unhealthy-post-repair"],
                    )
                if caps:
                    write_private(self.node.private / STATUS, json.dumps(rounds, indent=1))
            except (VeilError, OSError) as exc:
                log.error("scheduled renewal failed: %s", exc)
            await asyncio.sleep(every)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def start_scheduled_renewals(node: NodeDirectory) -> ScheduledRenewals:
    task = ScheduledRenewals(node)
    task.start()
    return task
