"""Deep check and deep repair of a directory tree on an in-process grid:
totals in Tahoe's deep-check shape, each object checked once, and a deep
repair that leaves every object healthy without re-signing directories."""

from __future__ import annotations

import os

from veil.formats import mutable_caps as mc
from veil.services.checker.deep import deep_check
from veil.services.directories import Directories, entry_for
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader

from .test_check_repair import PARAMS, Session, _files, backend, grid


async def _tree(session: Session) -> tuple[mc.DirCap, list[str]]:
    files = _files(session)
    dirs = Directories(files, Downloader(session.broker))
    up = Uploader(session.broker, PARAMS, lease_secret=b"L" * 32, convergence_secret=None)
    caps = [(await up.upload_bytes(os.urandom(5000 + i))).cap.to_string() for i in range(4)]
    sub = await dirs.create({"a": entry_for(caps[0]), "b": entry_for(caps[1])})
    root = await dirs.create(
        {
            "sub": entry_for(sub.to_string()),
            "c": entry_for(caps[2]),
            "again": entry_for(caps[2]),  # linked twice: checked once
            "tiny": entry_for("URI:LIT:nbswy3dp"),
            "d": entry_for(caps[3]),
        }
    )
    return root, caps


async def test_deep_check_totals_in_tahoe_shape() -> None:
    session, _ = grid()
    root, _ = await _tree(session)
    report = await deep_check(session, root)
    j = report.to_tahoe_json()
    assert j["count-objects-checked"] == 6  # 2 directories, 4 CHK files
    assert j["count-objects-healthy"] == 6 and j["count-objects-unhealthy"] == 0
    assert j["list-unhealthy-files"] == [] and j["count-corrupt-shares"] == 0
    assert j["stats"]["count-directories"] == 2
    assert j["stats"]["count-literal-files"] == 1
    assert j["stats"]["count-immutable-files"] == 4


async def test_deep_repair_heals_every_object_and_keeps_directory_versions() -> None:
    session, clients = grid()
    root, _ = await _tree(session)
    for c in clients[:2]:
        backend(c).shares.clear()
        backend(c).slots.clear()
    report = await deep_check(session, root, repair=True, add_lease=True)
    j = report.to_tahoe_json()
    assert j["count-objects-unhealthy-pre-repair"] == 6
    assert j["count-repairs-attempted"] == 6 and j["count-repairs-successful"] == 6
    assert j["count-objects-healthy-post-repair"] == 6
    unhealthy = {tuple(p) for p, _ in j["list-unhealthy-files"]}
    assert unhealthy == {(), ("sub",), ("sub", "a"), ("sub", "b"), ("again",), ("d",)}
    for path, r in report.objects:
        if r.pre.mutable:
            assert r.final.seqnum == r.pre.seqnum == 1, path
    again = await deep_check(session, root, verify=True)
    assert again.all_healthy
