"""``check``: check, verify, repair and renew one file or directory.

The entry point the CLI (``veil check``), the web gateway (``t=check``) and
delegated renewal use::

    report = await check(session, cap, verify=True, repair=True, add_lease=True)
    report.final.healthy, report.to_tahoe_json()

``session`` is anything with a ``broker``, the encoding ``params`` and a
``lease_secret()`` (``veil.adapters.node.client_session.Client`` is one; a
renewal cap's holder builds another from the renewal cap's secret). ``cap``
may be a cap object or its string; a verify cap is enough for everything
but mutable repair, which needs a write cap (see ``mutable_repair``). A
repair is attempted only when the check finds the object unhealthy (or its
shares on fewer servers than ``shares.happy``), so checking a healthy
directory changes nothing.
"""

from __future__ import annotations

from typing import Protocol

from veil.errors import CapabilityError, IntegrityError, UnhappinessError, VeilError
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, CHKVerifyCap, LiteralCap
from veil.formats.hashes import lease_secrets_for
from veil.formats.params import EncodingParameters
from veil.services.broker import StorageBroker
from veil.services.checker.immutable import LeaseSecrets, check_immutable
from veil.services.checker.immutable_repair import repair_immutable
from veil.services.checker.mutable import AnySSK, check_mutable
from veil.services.checker.mutable_repair import repair_same_version
from veil.services.checker.results import CheckReport, CheckResults
from veil.services.mutable.files import MutableFiles


class GridSession(Protocol):
    """What the checker needs of a client."""

    @property
    def broker(self) -> StorageBroker: ...

    @property
    def params(self) -> EncodingParameters: ...

    def lease_secret(self) -> bytes: ...


Checkable = mc.FileCap | mc.DirCap


def parse_checkable(cap: Checkable | str) -> Checkable:
    if isinstance(cap, str):
        return mc.parse_user_cap(cap)
    return cap


async def check(
    session: GridSession,
    cap: Checkable | str,
    *,
    verify: bool = False,
    repair: bool = False,
    add_lease: bool = False,
) -> CheckReport:
    """Check one object (a directory's own file, not its children: see ``deep``)."""
    parsed = parse_checkable(cap)
    file = parsed.file if isinstance(parsed, mc.DirCap) else parsed
    if isinstance(file, LiteralCap):
        return CheckReport(CheckResults(b"", literal=True), repair_requested=repair)
    secret = session.lease_secret()

    def secrets(si: bytes, seed: bytes) -> tuple[bytes, bytes]:
        return lease_secrets_for(secret, si, seed)

    leases = secrets if add_lease else None
    if isinstance(file, CHKReadCap | CHKVerifyCap):
        return await _immutable(session, _verify_cap(file), verify, repair, leases, secrets)
    if isinstance(file, mc.SSKWriteCap | mc.SSKReadCap | mc.SSKVerifyCap):
        return await _mutable(session, file, verify, repair, leases, secrets)
    raise CapabilityError("veil cannot check this kind of cap")


def _verify_cap(file: CHKReadCap | CHKVerifyCap) -> CHKVerifyCap:
    if isinstance(file, CHKVerifyCap):
        return file
    v = file.verify_cap()
    assert isinstance(v, CHKVerifyCap)
    return v


def _needs_repair(results: CheckResults, happy: int) -> bool:
    reachable = len(results.servers_responding)
    return not results.healthy or results.happiness < min(happy, reachable)


async def _immutable(
    session: GridSession,
    cap: CHKVerifyCap,
    verify: bool,
    repair: bool,
    leases: LeaseSecrets | None,
    secrets: LeaseSecrets,
) -> CheckReport:
    broker, happy = session.broker, session.params.happy
    first = await check_immutable(broker, cap, verify=verify, add_lease=leases)
    report = CheckReport(first.results, repair_requested=repair, leases_renewed=first.leases)
    if not repair or not _needs_repair(first.results, happy):
        return report
    report.repair_attempted = True
    if not first.results.recoverable:
        report.repair_problem = "too few good shares remain to rebuild the file"
        report.post = first.results
        return report
    basis = first
    try:
        try:
            report.repaired_shares = await repair_immutable(
                broker, cap, basis, happy=happy, lease_secrets=secrets
            )
        except IntegrityError:
            # a listed share was corrupt: verify them all, then build from good ones
            basis = await check_immutable(broker, cap, verify=True)
            report.pre.corrupt = basis.results.corrupt
            report.repaired_shares = await repair_immutable(
                broker, cap, basis, happy=happy, lease_secrets=secrets
            )
    except (VeilError, TimeoutError) as exc:
        report.repair_problem = str(exc) or type(exc).__name__
    after = await check_immutable(broker, cap, verify=verify)
    report.post = after.results
    report.repair_successful = after.results.healthy
    return report


async def _mutable(
    session: GridSession,
    cap: AnySSK,
    verify: bool,
    repair: bool,
    leases: LeaseSecrets | None,
    secrets: LeaseSecrets,
) -> CheckReport:
    files = MutableFiles(session.broker, session.params, lease_secret=session.lease_secret())
    happy = session.params.happy
    first = await check_mutable(files, cap, verify=verify, add_lease=leases)
    report = CheckReport(first.results, repair_requested=repair, leases_renewed=first.leases)
    if not repair or not _needs_repair(first.results, happy):
        return report
    report.repair_attempted = True
    if not isinstance(cap, mc.SSKWriteCap):
        report.repair_problem = (
            "repairing a mutable file needs its write cap (shares carry write enablers)"
        )
        report.post = first.results
        return report
    res = first.results
    try:
        if res.recoverable_versions == 1 and not res.unrecoverable_versions:
            report.repaired_shares = await repair_same_version(
                files, cap, first, happy=happy, lease_secrets=secrets
            )
        elif res.recoverable:
            # several versions, or fragments of one: publish the best one anew (seqnum + 1)
            await files.modify(cap, lambda data: data)
        else:
            raise UnhappinessError("no version of this mutable file is recoverable")
    except (VeilError, TimeoutError) as exc:
        report.repair_problem = str(exc) or type(exc).__name__
    after = await check_mutable(files, cap, verify=verify)
    report.post = after.results
    report.repair_successful = after.results.healthy
    return report
