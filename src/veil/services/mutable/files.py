"""Mutable files (SDMF) from the client side: create, read, overwrite, modify.

Every operation starts with a *server map*: each server is asked for its
shares of the storage index and each share is read whole in one request (the
first 4000 bytes, and when it is longer, all of it again), so a concurrent
publish can never hand the map half of one version and half of another. Every
share is checked — public key against the cap's fingerprint, RSA-PSS signature,
block and share hashes — before it counts. The best version is the recoverable
one (k good shares) with the highest (seqnum, root hash).

A publish writes seqnum + 1 with one test-and-write per server: a share the map
saw is replaced only if it still holds what the map saw (its 57-byte
checkstring), a new one only if none exists. The server with the first share
of the base version (in permuted order) is written first, alone: concurrent
writers from the same version all race for it, and the losers stop before
touching any other share, so a lost race leaves no fragments behind. If any
test fails, another writer got there first: ``UncoordinatedWriteError``.

``modify`` is read-modify-write from *one* map (the change is applied to the
version that map holds and published with its checkstrings, so a version
written since fails the tests); ``veil.services.mutable.retry`` retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)

from veil.codec import make_codec
from veil.errors import (
    FormatError,
    IntegrityError,
    NotEnoughSharesError,
    NotFound,
    UncoordinatedWriteError,
    UploadError,
    VeilError,
)
from veil.formats import mutable_caps as mc
from veil.formats import sdmf
from veil.formats.crypto import ctr_cipher
from veil.formats.hashes import lease_secrets_for
from veil.formats.params import EncodingParameters
from veil.formats.storage_types import TestWrite
from veil.formats.wire_batch import MUTABLE_READ_EXTENSION, offers_batch
from veil.services.broker import StorageBroker
from veil.services.interfaces import BatchStorageClient, StorageClient
from veil.services.mutable.retry import InProgress, Marker, retrying
from veil.services.mutable.server_map import (
    READ_MARGIN,
    RecentWrites,
    Seen,
    ServerMap,
    first_share,
)

if TYPE_CHECKING:
    from veil.services.mutable.mdmf_files import MDMFFiles

FIRST_READ = 4000
MUST_NOT_EXIST = (0, 1, b"")


def signing_key(
    cap: mc.SSKWriteCap, enc_privkeys: bytes | Iterable[bytes]
) -> tuple[rsa.RSAPrivateKey, bytes]:
    """The signing key (and its DER) from the first share whose encrypted copy is
    right: no signature covers it, so one bad share must not stop a writer."""
    for enc in [enc_privkeys] if isinstance(enc_privkeys, bytes) else enc_privkeys:
        der = ctr_cipher(cap.writekey).update(enc)
        if mc.writekey_from_privkey(der) != cap.writekey:
            continue
        return _load_key(der), der
    raise IntegrityError("the encrypted signing key in the shares does not match the cap")


@functools.lru_cache(maxsize=8)
def _load_key(der: bytes) -> rsa.RSAPrivateKey:
    """The key, without OpenSSL's RSA consistency check (20-200 ms): the caller has
    already matched ``der`` against the cap's writekey, which is a hash of it."""
    key = load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise IntegrityError("the signing key in the shares is not RSA")
    return key


def generate_key() -> rsa.RSAPrivateKey:
    """A new 2048-bit signing key (about 20-80 ms here)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _surprise() -> UncoordinatedWriteError:
    return UncoordinatedWriteError(
        "another writer changed this mutable file at the same time",
        hint="read it again and repeat your change if it is still needed",
    )


class MutableFiles:
    def __init__(
        self,
        broker: StorageBroker,
        params: EncodingParameters,
        *,
        lease_secret: bytes,
        keygen: Callable[[], rsa.RSAPrivateKey] = generate_key,
        codec_backend: str = "auto",
        timeout: float = 120.0,
        recent: RecentWrites | None = None,
    ) -> None:
        self.timeout = timeout
        self.recent = recent  # this client's own last writes (a running node keeps one)
        self.broker = broker
        self.params = params
        self.lease_secret = lease_secret
        self.keygen = keygen
        self.codec_backend = codec_backend

    def mdmf(self) -> MDMFFiles:
        from veil.services.mutable.mdmf_files import MDMFFiles

        return MDMFFiles(self)

    # -- reading ---------------------------------------------------------------------

    async def _query(
        self, server: StorageClient, si: bytes, fingerprint: bytes, out: ServerMap
    ) -> None:
        try:
            starts = await self._first_reads(server, si)
            for shnum in sorted(starts):
                raw = await self._read_whole(server, si, shnum, starts[shnum])
                try:
                    share = sdmf.parse_share(raw)
                    sdmf.verify_share(share, shnum, fingerprint)
                except (FormatError, IntegrityError) as exc:
                    out.seen.append(Seen(server, shnum, raw[:57], None))
                    await server.mutable_advise_corrupt(si, shnum, str(exc))
                    continue
                out.seen.append(Seen(server, shnum, raw[:57], share))
        except VeilError:
            return  # an unreachable or misbehaving server just is not in the map

    async def _first_reads(self, server: StorageClient, si: bytes) -> dict[int, bytes]:
        """The first ``FIRST_READ`` bytes of each of the server's shares: in one
        request where the server offers veil's mutable read (``wire_batch``), else
        the share listing and a read per share, as the protocol has them."""
        version = self.broker.known_version(server)
        if (
            version is not None
            and isinstance(server, BatchStorageClient)
            and offers_batch(version.application_version, MUTABLE_READ_EXTENSION)
        ):
            try:
                return await server.mutable_read_batch(si, FIRST_READ)
            except NotFound:  # the route is gone (an older server now): ask it again later
                self.broker.forget_version(server.server_id)
        shares = await server.mutable_list_shares(si)
        return {
            shnum: await server.mutable_read(si, shnum, 0, FIRST_READ) for shnum in sorted(shares)
        }

    @staticmethod
    async def _read_whole(
        server: StorageClient, si: bytes, shnum: int, raw: bytes | None = None
    ) -> bytes:
        """One share from a single read (atomic on the server; ``raw``: its first
        ``FIRST_READ`` bytes if already read); a longer one is read again whole,
        never glued from two reads a publish could fall between."""
        if raw is None:
            raw = await server.mutable_read(si, shnum, 0, FIRST_READ)
        for _ in range(3):
            if len(raw) < sdmf.HEADER.size:
                break
            eof = sdmf.HEADER.unpack_from(raw)[-1]
            if eof <= len(raw) or eof > sdmf.MAX_SHARE:
                break
            raw = await server.mutable_read(si, shnum, 0, eof)
        return raw

    async def server_map(
        self, si: bytes, fingerprint: bytes, servers: Sequence[StorageClient] | None = None
    ) -> ServerMap:
        """Every share of every server (or of ``servers``), as a write needs."""
        found = ServerMap()
        await self._ask(self.broker.servers if servers is None else servers, si, fingerprint, found)
        return found

    async def _ask(
        self, servers: Sequence[StorageClient], si: bytes, fingerprint: bytes, found: ServerMap
    ) -> None:
        async def bounded(server: StorageClient) -> None:
            with contextlib.suppress(TimeoutError):  # one that does not answer is not in it
                await asyncio.wait_for(self._query(server, si, fingerprint, found), self.timeout)

        await asyncio.gather(*(bounded(s) for s in servers))

    async def read_map(self, si: bytes, fingerprint: bytes) -> ServerMap:
        """For a read, as Tahoe's MODE_READ: the first k + ``READ_MARGIN`` servers of
        the permuted ring (where the shares are placed), and the rest only when they
        hold no recoverable version or show a newer one being written."""
        ring = self.broker.permuted(si)
        first = ring[: self.params.needed + READ_MARGIN]
        found = await self.server_map(si, fingerprint, first)
        best = found.best()
        if best is None or found.highest_seqnum() > first_share(best).seqnum:
            await self._ask(ring[len(first) :], si, fingerprint, found)
        return found

    async def read(self, cap: mc.SSKWriteCap | mc.SSKReadCap) -> bytes:
        read_cap = cap.read_cap() if isinstance(cap, mc.SSKWriteCap) else cap
        if read_cap.mdmf:
            return await self.mdmf().read(read_cap)
        found = await self.read_map(read_cap.storage_index, read_cap.fingerprint)
        return self._contents(found, read_cap)

    async def read_for_change(self, cap: mc.SSKWriteCap) -> tuple[bytes, ServerMap | None]:
        """The contents, and the whole server map they came from (every server
        asked, as a write needs): ``modify(..., known=map)`` later spares the
        write its own map when nobody wrote in between. MDMF: no map."""
        read_cap = cap.read_cap()
        if read_cap.mdmf:
            return await self.mdmf().read(read_cap), None
        found = await self.server_map(read_cap.storage_index, read_cap.fingerprint)
        return self._contents(found, read_cap), found

    def _contents(self, found: ServerMap, read_cap: mc.SSKReadCap) -> bytes:
        best = found.best()
        if best is None:
            raise NotEnoughSharesError(
                "not enough good shares of this mutable file were found "
                f"({len(found.seen)} share(s) seen on the reachable servers)"
            )
        shares = {sh: s.share for sh, s in best.items() if s.share is not None}
        any_share = next(iter(shares.values()))
        codec = make_codec(any_share.k, any_share.n, backend=self.codec_backend)
        return sdmf.decrypt(shares, read_cap.readkey, codec.decode)

    # -- writing ---------------------------------------------------------------------

    async def create(self, data: bytes | Callable[[mc.SSKWriteCap], bytes]) -> mc.SSKWriteCap:
        """A new mutable file; ``data`` may depend on its cap (directories do)."""
        key = await asyncio.to_thread(self.keygen)
        der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        pub = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        cap = mc.SSKWriteCap(mc.writekey_from_privkey(der), mc.fingerprint_from_pubkey(pub))
        if callable(data):
            data = data(cap)
        p = self.params
        await self._publish(cap, key, der, data, 1, p.needed, p.total, [])
        return cap

    async def overwrite(self, cap: mc.SSKWriteCap, data: bytes) -> int:
        """Replace the contents (waiting for other writers); returns the new seqnum."""
        return await self.modify(cap, data)

    async def modify(
        self,
        cap: mc.SSKWriteCap,
        change: bytes | Callable[[bytes], bytes],
        *,
        what: str = "mutable file",
        known: ServerMap | None = None,
    ) -> int:
        """Publish ``change`` (new contents, or a function of the current ones),
        retrying while other writers change the file; returns the new seqnum.

        ``known``: a whole server map read earlier (``read_for_change``), used by
        the first attempt instead of asking again; if anybody wrote since, that
        attempt's tests fail, nothing is written, and the next asks afresh."""
        if cap.mdmf:
            return await self.mdmf().modify(cap, change, what=what)
        first = [known] if known is not None else []
        return await retrying(
            lambda stale: self._modify_once(cap, change, stale, first.pop() if first else None),
            what=what,
        )

    async def _modify_once(
        self,
        cap: mc.SSKWriteCap,
        change: bytes | Callable[[bytes], bytes],
        stale: Marker,
        found: ServerMap | None = None,
    ) -> int:
        read_cap = cap.read_cap()
        if found is None and self.recent is not None:
            found = self.recent.take(read_cap.storage_index)  # once: a retry asks afresh
        if found is None:
            found = await self.server_map(read_cap.storage_index, cap.fingerprint)
        best = found.best()
        newer = found.newer_than(first_share(best).seqnum if best else -1)
        if not newer <= stale:
            raise InProgress(newer)  # wait for it (with no best version: maybe mid-publish)
        if best is None:
            raise NotEnoughSharesError("no readable version of this mutable file was found")
        shares = {sh: s.share for sh, s in best.items() if s.share is not None}
        first = first_share(best)
        if callable(change):
            codec = make_codec(first.k, first.n, backend=self.codec_backend)
            data = change(sdmf.decrypt(shares, read_cap.readkey, codec.decode))
        else:
            data = change
        key, der = signing_key(cap, [s.enc_privkey for s in shares.values()])
        seqnum = found.highest_seqnum() + 1
        base = [(s.server, s.shnum) for s in best.values()]
        await self._publish(cap, key, der, data, seqnum, first.k, first.n, found.tests(), base)
        return seqnum

    async def _publish(
        self,
        cap: mc.SSKWriteCap,
        key: rsa.RSAPrivateKey,
        der: bytes,
        data: bytes,
        seqnum: int,
        k: int,
        n: int,
        seen: list[tuple[StorageClient, int, bytes]],
        base: list[tuple[StorageClient, int]] | None = None,
    ) -> None:
        readkey = mc.readkey_from_writekey(cap.writekey)
        si = mc.storage_index_from_readkey(readkey)
        codec = make_codec(k, n, backend=self.codec_backend)
        shares = await asyncio.to_thread(
            sdmf.encode_version,
            data,
            readkey=readkey,
            private_key=key,
            enc_privkey=ctr_cipher(cap.writekey).update(der),
            seqnum=seqnum,
            iv=os.urandom(16),
            k=k,
            n=n,
            encode_segment=codec.encode_segment,
        )
        packed = [share.pack() for share in shares]
        writes = {sh: [(0, raw)] for sh, raw in enumerate(packed)}
        if self.recent is not None:
            self.recent.forget(si)
        landed = await self.place_and_write(si, cap.writekey, writes, k, n, seen, base=base or [])
        if self.recent is not None and landed is not None:
            old = [s for s, sh, _ in seen if sh not in writes]
            if not old:  # every share the file has is one just written
                written = [Seen(s, sh, packed[sh][:57], shares[sh]) for s, sh in landed]
                self.recent.keep(si, ServerMap(written))

    async def place_and_write(
        self,
        si: bytes,
        writekey: bytes,
        writes: dict[int, list[tuple[int, bytes]]],
        k: int,
        n: int,
        seen: list[tuple[StorageClient, int, bytes]],
        *,
        new_shares: bool = True,
        base: list[tuple[StorageClient, int]] | None = None,
    ) -> list[tuple[StorageClient, int]] | None:
        """Write each share where the map saw it (testing its checkstring), homeless
        ones (``new_shares``) to the least-loaded servers, earliest in the ring;
        the server of the first ``base`` share goes first, alone (the leader).
        Returns where every share went, or None when some server's write failed
        (enough of them landed, or this raised)."""
        plan: dict[str, dict[int, tuple[int, int, bytes]]] = {}  # server id -> shnum -> test
        servers = {s.server_id: s for s in self.broker.servers}
        for server, shnum, check in seen:
            if shnum < n and shnum in writes:
                plan.setdefault(server.server_id, {})[shnum] = (0, len(check), check)
        placed = {sh for tests in plan.values() for sh in tests}
        homeless = [sh for sh in writes if sh not in placed] if new_shares else []
        ring = self.broker.permuted(si)
        if homeless and not ring:
            raise UploadError("no storage servers are known")
        for sh in homeless:  # to the least-loaded server, earliest in the permuted ring
            j = min(range(len(ring)), key=lambda j: (len(plan.get(ring[j].server_id, {})), j))
            plan.setdefault(ring[j].server_id, {})[sh] = MUST_NOT_EXIST
        wem = mc.write_enabler_master(writekey)
        where = {s.server_id: j for j, s in enumerate(ring)}
        leaders = [
            server.server_id
            for server, shnum in sorted(
                base or [], key=lambda b: (where.get(b[0].server_id, len(where)), b[1])
            )
        ]
        written = 0
        landed: list[tuple[StorageClient, int]] = []
        failed = False
        for sid in dict.fromkeys(leaders):  # the first one that answers leads
            if sid not in plan:
                continue
            tests = plan.pop(sid)
            count, surprised = await self._write(servers[sid], si, wem, tests, writes)
            if surprised:
                raise _surprise()
            written += count
            if count:
                landed += [(servers[sid], sh) for sh in tests]
                break
            failed = True
        rest = list(plan.items())
        results = await asyncio.gather(
            *(self._write(servers[sid], si, wem, tests, writes) for sid, tests in rest)
        )
        written += sum(r for r, _ in results)
        surprised = any(s for _, s in results)
        if surprised:
            raise _surprise()
        if written < k:
            raise UploadError(f"only {written} share(s) of the mutable file could be written")
        for (sid, tests), (count, _) in zip(rest, results, strict=True):
            failed = failed or not count
            landed += [(servers[sid], sh) for sh in tests]
        return None if failed else landed

    async def _write(
        self,
        server: StorageClient,
        si: bytes,
        wem: bytes,
        tests: dict[int, tuple[int, int, bytes]],
        writes: dict[int, list[tuple[int, bytes]]],
    ) -> tuple[int, bool]:
        """(shares written, surprised) for one server."""
        vectors = {sh: TestWrite((test,), tuple(writes[sh])) for sh, test in tests.items()}
        renew, cancel = lease_secrets_for(self.lease_secret, si, server.lease_seed)
        try:
            result = await asyncio.wait_for(
                server.mutable_read_test_write(
                    si,
                    vectors,
                    [(0, 57)],
                    write_enabler=mc.write_enabler(wem, server.lease_seed),
                    renew_secret=renew,
                    cancel_secret=cancel,
                ),
                self.timeout,
            )
        except (VeilError, TimeoutError):
            return 0, False
        return (len(vectors), False) if result.success else (0, True)
