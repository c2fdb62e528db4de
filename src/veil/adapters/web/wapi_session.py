"""The gateway's one client session, and the grid operations the web API needs.

``GatewaySession`` opens ``veil.adapters.node.client_session.open_client`` once,
at the first request (so a node that is also the introducer has started it
first), and keeps it for the gateway's lifetime: one broker, one set of
connections, however many requests (servers announced later are added every
``REFRESH`` seconds). What it adds over the services is only
Tahoe's web semantics: walking a path one name at a time (``No such child``),
making missing intermediate directories on the way (PUT and POST do, as
Tahoe), linking with ``replace=`` (true, false, only-files), and reading a file
of any kind. Directory changes go through ``veil.services.directories``
(read-modify-write with retries), files through the uploader, downloader and
``MutableFiles``; nothing here encodes or decodes a share.
"""

from __future__ import annotations

import asyncio
import logging
import time
from base64 import urlsafe_b64decode
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

from veil.adapters.node.client_session import (
    Client,
    foolscap_only,
    known_servers,
    needs_tor,
    open_client,
    storage_client_for,
)
from veil.adapters.node.key_pool import KeyPool
from veil.adapters.web.wapi_errors import WebError, existing_child, no_such_child
from veil.adapters.web.wapi_nodes import Node
from veil.adapters.web.wapi_status import Transfers
from veil.errors import VeilError
from veil.formats import base32, cap_display, dirnode
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, CHKVerifyCap, LiteralCap, UnknownCap
from veil.formats.dirnode import Entry
from veil.services.directories import Directories, entry_for, linked
from veil.services.mutable.files import MutableFiles

Replace = bool | str
REFRESH = 300.0  # seconds between asking the introducers again
log = logging.getLogger(__name__)


def cap_display_si(cap: object) -> str:
    """The storage index of a cap, base32 (public: every server knows it)."""
    si = cap_display.storage_index(cap)
    return base32.b2a(si) if si else ""  # True, False or "only-files"


def signing_key_arg(text: str | None) -> rsa.RSAPrivateKey | None:
    """``private-key=``: a urlsafe-base64 DER RSA key (Gridsync's deterministic rootcap)."""
    if not text:
        return None
    try:
        key = load_der_private_key(urlsafe_b64decode(text.encode("ascii")), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise WebError("private-key= is not a urlsafe-base64 DER RSA private key", 400) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise WebError("private-key= must be an RSA key", 400)
    return key


def unknown_in_write_slot(name: str) -> str:
    """Tahoe's MustNotBeUnknownRWError text: a cap it cannot parse is not linked."""
    return (
        f"MustNotBeUnknownRWError: an operation to add a child named '{name}' to a directory "
        "was given an unknown cap in a write slot.\nUsing a webapi server that supports a "
        "later version of Tahoe may help.\n\nIf you are using the webapi directly, specifying "
        "a readcap in the read slot (ro_uri) of the JSON PROPDICT, as well as a writecap in the "
        "write slot if desired, would also work in this case."
    )


def check_name(name: str) -> str:
    """A child's name, NFC; ``/``, empty names and ``.``/``..`` are refused (a name
    that means a path on every disk it is copied to)."""
    try:
        normal = dirnode.normalize(name)
    except VeilError:
        raise WebError(f"{name!r} is not a valid name in a directory", 400) from None
    if normal in (".", ".."):
        raise WebError(f"{name!r} is not a valid name in a directory", 400)
    return normal


class GatewaySession:
    def __init__(self, node_dir: Path, *, refresh: float = REFRESH) -> None:
        self.node_dir = node_dir
        self.refresh_every = refresh
        self._stack = AsyncExitStack()
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._heard_at = 0.0
        self._refreshing: asyncio.Future[None] | None = None
        self.transfers = Transfers()
        self._keys = KeyPool()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    client = await self._stack.enter_async_context(open_client(self.node_dir))
                    client.keygen = self._keys.take  # a key ready for the next mkdir
                    self._keys.fill()
                    self._client = client
                    self._heard_at = time.monotonic()
        elif time.monotonic() - self._heard_at > self.refresh_every and self._refreshing is None:
            self._heard_at = time.monotonic()
            self._refreshing = asyncio.ensure_future(self.refresh())
        return self._client

    async def refresh(self) -> None:
        """Add the servers announced since the session opened (Tahoe's clients keep
        hearing their introducers; the gateway asks again every ``refresh`` seconds)."""
        client = self._client
        if client is None:
            return
        try:
            if client.networks is None or not client.node.introducers():
                return
            heard = await known_servers(client.node, client.networks)
            present = {s.server_id for s in client.broker.servers}
            for sid, ann in heard.items():
                if sid in present or foolscap_only(ann):
                    continue
                try:
                    if needs_tor(sid, ann):
                        await client.networks.ensure_tor()
                    client.broker.add(storage_client_for(sid, ann, client.networks))
                    client.announcements[sid] = ann
                except VeilError as exc:
                    log.warning("ignoring server %s: %s", sid[:16], exc)
        except VeilError as exc:
            log.warning("could not hear the introducers again: %s", exc)
        finally:
            self._refreshing = None

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        await self._stack.aclose()
        self._client = None
        await asyncio.to_thread(self._keys.close)

    async def directories(self, key: rsa.RSAPrivateKey | None = None) -> Directories:
        c = await self.client()
        if key is None:
            return c.directories()
        files = MutableFiles(
            c.broker, c.params, lease_secret=c.node.lease_secret(), keygen=lambda: key
        )
        return Directories(files, c.downloader())

    # -- files ----------------------------------------------------------------------

    async def upload(self, f: BinaryIO, size: int) -> str:
        c = await self.client()
        with self.transfers.track("upload", size) as transfer:
            result = await c.uploader(progress=transfer.advance).upload_file(f, size)
            transfer.storage_index = cap_display_si(result.cap)
        return result.cap.to_string()

    async def create_mutable(
        self, data: bytes, fmt: str, key: rsa.RSAPrivateKey | None = None
    ) -> str:
        c = await self.client()
        files = c.mutable_files()
        if key is not None:
            files = MutableFiles(
                c.broker, c.params, lease_secret=c.node.lease_secret(), keygen=lambda: key
            )
        made = await (files.mdmf().create(data) if fmt == "MDMF" else files.create(data))
        return made.to_string()

    async def read_mutable(self, node: Node) -> bytes:
        f = node.file
        assert isinstance(f, mc.SSKWriteCap | mc.SSKReadCap)
        return await (await self.client()).mutable_files().read(f)

    async def overwrite(self, node: Node, data: bytes, offset: int | None = None) -> None:
        f = node.file
        if not isinstance(f, mc.SSKWriteCap):
            raise WebError("PUT to a mutable file: replace or update requested with read-only cap")
        files = (await self.client()).mutable_files()
        if offset is None:
            await files.overwrite(f, data)
        elif not f.mdmf:
            old = await files.read(f)
            if offset > len(old):
                raise WebError("PUT to a mutable file: Invalid offset")
            await files.overwrite(f, old[:offset] + data + old[offset + len(data) :])
        else:
            await files.mdmf().update(f, offset, data)

    async def stream_immutable(
        self, cap: CHKReadCap | LiteralCap, offset: int, length: int
    ) -> AsyncGenerator[bytes]:
        if isinstance(cap, LiteralCap):
            yield cap.data[offset : offset + length]
            return
        c = await self.client()
        with self.transfers.track("download", length, cap_display_si(cap)) as transfer:
            async for chunk in c.downloader().stream(cap, offset, length):
                transfer.advance(len(chunk))
                yield chunk

    # -- directories ----------------------------------------------------------------

    async def children(self, node: Node) -> dict[str, Entry]:
        assert isinstance(node.cap, mc.DirCap)
        if isinstance(node.file, mc.SSKVerifyCap | CHKVerifyCap):
            raise WebError("a verify cap cannot list a directory", 400)
        return await (await self.directories()).children(node.cap)

    async def listing(self, node: Node) -> tuple[dict[str, Entry], int | None]:
        """The children and the size of the directory's contents (Tahoe's deep stats
        count it): read here, not through ``Directories``, to know that size."""
        f = node.file
        c = await self.client()
        if isinstance(f, mc.SSKWriteCap | mc.SSKReadCap):
            data = await c.mutable_files().read(f)
            key = f.writekey if isinstance(f, mc.SSKWriteCap) else None
            return dirnode.unpack(data, key), len(data)
        if isinstance(f, CHKReadCap):
            return dirnode.unpack(await c.downloader().download_bytes(f), None), f.size
        if isinstance(f, LiteralCap):
            return dirnode.unpack(f.data, None), len(f.data)
        raise WebError("a verify cap cannot list a directory", 400)

    async def child(self, parent: Node, name: str) -> Node | None:
        """The child ``name`` of a directory node, or None when there is none."""
        kids = await self.children(parent)
        entry = kids.get(check_name(name))
        if entry is None:
            return None
        assert isinstance(parent.cap, mc.DirCap)
        return Node.from_entry(entry, parent.cap, check_name(name))

    async def walk(self, root: Node, names: list[str], *, create: bool = False) -> Node:
        """The node at ``names`` below ``root``; with ``create``, missing directories
        on the way are made (Tahoe's PUT/POST), a file in the way is a 409."""
        here = root
        for name in names:
            if not here.is_dir:
                raise WebError(
                    f"Files have no children named {name!r}",
                    400 if not create else 409,
                    page=True,
                )
            found = await self.child(here, name)
            if found is None:
                if not create:
                    raise no_such_child(name)
                cap = await self.mkdir_child(here, name, replace=False)
                found = Node.from_text(cap)
                assert isinstance(here.cap, mc.DirCap)
                found.parent, found.name = here.cap, check_name(name)
            elif create and not found.is_dir:
                raise WebError(
                    f"Unable to create directory {name!r}: a file was in the way", 409, page=True
                )
            here = found
        return here

    async def link(
        self,
        parent: Node,
        name: str,
        cap_text: str,
        replace: Replace = True,
        metadata: dict[str, object] | None = None,
    ) -> None:
        """Link ``cap_text`` as ``name`` in ``parent`` (Tahoe's set_uri / set_node)."""
        if not isinstance(parent.cap, mc.DirCap) or parent.is_readonly:
            raise WebError("the directory is read-only: its cap is not a write cap", 400)
        key = check_name(name)
        if isinstance(mc.parse_any(cap_text), UnknownCap):
            raise WebError(unknown_in_write_slot(key), 400)
        entry = entry_for(cap_text, metadata)

        def change(kids: dict[str, Entry]) -> dict[str, Entry]:
            old = kids.get(key)
            if old is not None and (
                replace is False
                or (
                    replace == "only-files"
                    and isinstance(mc.parse_any(old.rw_cap or old.ro_cap or ""), mc.DirCap)
                )
            ):
                raise existing_child()
            kids[key] = linked(entry, old)
            return kids

        await (await self.directories()).modify(parent.cap, change)

    async def unlink(self, parent: Node, name: str) -> Entry:
        if not isinstance(parent.cap, mc.DirCap) or parent.is_readonly:
            raise WebError("the directory is read-only: its cap is not a write cap", 400)
        key = check_name(name)
        removed: list[Entry] = []

        def change(kids: dict[str, Entry]) -> dict[str, Entry]:
            if key not in kids:
                raise WebError(f"No such child: {name}", 404)
            removed.append(kids.pop(key))
            return kids

        await (await self.directories()).modify(parent.cap, change)
        return removed[-1]

    async def mkdir(
        self,
        entries: dict[str, Entry] | None = None,
        *,
        fmt: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        dirs = await self.directories(key)
        return (await dirs.create(entries or {}, mdmf=fmt == "MDMF")).to_string()

    async def mkdir_immutable(self, entries: dict[str, Entry]) -> str:
        c = await self.client()
        return (await c.directories().create_immutable(entries, c.uploader())).to_string()

    async def mkdir_child(
        self,
        parent: Node,
        name: str,
        *,
        replace: Replace = True,
        entries: dict[str, Entry] | None = None,
        fmt: str | None = None,
        immutable: bool = False,
    ) -> str:
        """A new directory linked as ``name`` in ``parent``; returns its cap."""
        if not isinstance(parent.cap, mc.DirCap) or parent.is_readonly:
            raise WebError("the directory is read-only: its cap is not a write cap", 400)
        if replace is False and await self.child(parent, name) is not None:
            raise existing_child()  # before anything is made
        if immutable:
            cap = await self.mkdir_immutable(entries or {})
        else:
            cap = await self.mkdir(entries, fmt=fmt)
        await self.link(parent, name, cap, replace)
        return cap
