"""Renewal caps on an in-process grid: the cap round-trips and never shows
itself; its holder renews leases under the cap's secret, rebuilds immutable
objects from verify caps, and can neither decrypt nor list nor write."""

from __future__ import annotations

import json
import os
import zlib

import pytest

from veil.errors import CapabilityError, Unauthorized
from veil.formats import base32
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, CHKVerifyCap
from veil.formats.hashes import lease_secrets_for
from veil.formats.storage_types import TestWrite
from veil.services.directories import Directories, entry_for
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.services.mutable.files import MutableFiles
from veil.services.renewal import listing
from veil.services.renewal.cap import RenewalCap, parse_renewal_cap
from veil.services.renewal.renew import RenewalSession, renew

from .test_check_repair import PARAMS, Session, _files, backend, grid


async def _owner_tree(session: Session) -> tuple[mc.DirCap, list[str], Directories]:
    files = _files(session)
    dirs = Directories(files, Downloader(session.broker))
    up = Uploader(session.broker, PARAMS, lease_secret=b"L" * 32, convergence_secret=b"c" * 16)
    caps = [(await up.upload_bytes(os.urandom(4000 + i))).cap.to_string() for i in range(3)]
    snapshot = await dirs.create_immutable({"f": entry_for(caps[0]), "g": entry_for(caps[1])}, up)
    root = await dirs.create({"Archives": entry_for(snapshot.to_string()), "h": entry_for(caps[2])})
    return root, caps, dirs


async def _renewal_cap(session: Session, root: mc.DirCap, dirs: Directories) -> RenewalCap:
    up = Uploader(session.broker, PARAMS, lease_secret=b"L" * 32, convergence_secret=b"c" * 16)
    caps = await listing.collect(dirs, root)
    pointer, _ = await listing.publish(up, dirs.files, None, caps)
    return RenewalCap(b"R" * 32, pointer.read_cap(), {"v0-x": {"nickname": "s"}})


async def test_the_cap_round_trips_and_never_shows_itself() -> None:
    session, _ = grid()
    root, _, dirs = await _owner_tree(session)
    cap = await _renewal_cap(session, root, dirs)
    text = cap.to_string()
    assert text.startswith("URI:VEIL-RENEWAL:")
    again = parse_renewal_cap(text)
    assert (again.secret, again.pointer, again.servers) == (cap.secret, cap.pointer, cap.servers)
    assert text[20:40] not in repr(cap) and "RRRR" not in str(cap)
    with pytest.raises(CapabilityError, match="damaged"):
        parse_renewal_cap(text[:-10])


async def test_the_holder_renews_and_repairs_but_cannot_read_or_write() -> None:
    session, clients = grid(8)
    root, file_caps, dirs = await _owner_tree(session)
    cap = await _renewal_cap(session, root, dirs)
    # what the holder has: the cap's text, nothing else
    holder = RenewalSession(session.broker, PARAMS, parse_renewal_cap(cap.to_string()).secret)
    held = parse_renewal_cap(cap.to_string())
    body = json.loads(zlib.decompress(base32.a2b(cap.to_string().split(":", 2)[2])))
    for text in file_caps:
        readable = mc.parse_user_cap(text)
        assert isinstance(readable, CHKReadCap)
        assert base32.b2a(readable.readkey) not in json.dumps(body)
    hfiles = MutableFiles(session.broker, PARAMS, lease_secret=holder.secret)
    _, listed = await listing.read(hfiles, Downloader(session.broker), held.pointer)
    assert len(listed) == 5  # the root, the snapshot and three files
    hdirs = Directories(hfiles, Downloader(session.broker))
    for v in listed:
        assert isinstance(v, CHKVerifyCap | mc.DirCap)
        if isinstance(v, mc.DirCap):
            assert isinstance(v.file, CHKVerifyCap | mc.SSKVerifyCap)
            with pytest.raises(CapabilityError):
                await hdirs.children(v)  # cannot list a directory
        else:
            assert not hasattr(v, "readkey")  # nothing to decrypt a block with
    # cannot write: no key material in the cap yields the root's write enabler
    root_si = mc.attenuate(root, verify=True).file.storage_index  # type: ignore[union-attr]
    server = next(c for c in clients if c.service.mutable_list_shares(root_si))
    for guess in (held.secret, held.pointer.readkey, held.pointer.fingerprint):
        wem = mc.write_enabler_master(guess[:16] if len(guess) > 16 else guess)
        with pytest.raises(Unauthorized):
            await server.mutable_read_test_write(
                root_si,
                {0: TestWrite((), ((0, b"x"),))},
                [],
                write_enabler=mc.write_enabler(wem, server.lease_seed),
                renew_secret=b"r" * 32,
                cancel_secret=b"c" * 32,
            )
    # renew: lose two servers' shares, then the holder's run renews and repairs
    for c in clients[:2]:
        backend(c).shares.clear()
    report = await renew(holder, held)
    j = report.to_tahoe_json()
    immutable = [r for _, r in report.objects if not r.pre.mutable]
    assert all(r.final.healthy for r in immutable)
    assert j["count-objects-checked"] == 7  # the pointer, the list and the five objects
    for c in clients[2:]:
        for (si, _), (_, leases) in backend(c).shares.items():
            renew_secret, _ = lease_secrets_for(holder.secret, si, c.lease_seed)
            assert any(lease.matches_renew(renew_secret) for lease in leases)
    first = mc.parse_user_cap(file_caps[0])
    assert isinstance(first, CHKReadCap)
    for c in clients[2:5]:
        c.fail = True
    assert len(await Downloader(session.broker).download_bytes(first)) == 4000
