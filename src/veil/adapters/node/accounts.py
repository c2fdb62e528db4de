"""A storage node's accounts: ``private/accounts.yaml``, and the running server's view.

The operator makes an account per friend (``veil account add``); each has a
number (from ``accounts.FIRST_ACCOUNT`` up, never reused, so a removed
account's leftover leases are never counted for a new one), a name (not
secret), a random swissnum (secret) and an optional quota in bytes. The
anonymous account (0, the announced swissnum) may have a quota too; 0
refuses new shares. The file is YAML, written 0600 through a temporary file
and read fail-closed (a file others can read, or that is not what veil
writes, stops the command with one line). Edits hold ``flock`` on
``private/accounts.lock``.

``ServerAccounts`` is what a running storage server uses: it re-reads the
file when it changes (so ``veil account add`` works without a restart),
answers which account an ``Authorization`` header carries (by SHA-256 of the
header, so no swissnum is compared byte by byte), and gives the core its
``AccountLimits``. ``account_nurls`` / ``servers_entry`` build what a friend
needs: the server's own NURLs (and Tahoe's fURL) with the account's swissnum.

Not here: the accounting itself (``veil.services.storage.accounts``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from veil.adapters.http.storage_server import authorization
from veil.adapters.node.files import present, read_text, write_private
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.storage.lease_index import FILENAME as INDEX_FILE
from veil.adapters.storage.lease_index import read_account_usage
from veil.errors import ConfigError, UsageError, VeilError
from veil.formats import base32
from veil.formats.nurl import parse_nurl
from veil.services.storage.accounts import (
    ANONYMOUS,
    FIRST_ACCOUNT,
    Accounting,
    AccountLimits,
    UsageSource,
    account_figures,
)
from veil.services.storage.server import StorageServer

log = logging.getLogger("veil.accounts")
FILENAME = "accounts.yaml"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}\Z")
_HEADER = "# veil storage accounts, written by 'veil account'. SECRET: holds swissnums.\n"


@dataclass(frozen=True)
class Account:
    name: str
    number: int
    swissnum: str = field(repr=False)
    quota: int | None = None


@dataclass
class Accounts:
    """The whole file: named accounts, the anonymous quota, the next number."""

    accounts: dict[str, Account] = field(default_factory=dict)
    anonymous_quota: int | None = None
    next_number: int = FIRST_ACCOUNT

    def limits(self) -> AccountLimits:
        quotas: dict[int, int | None] = {a.number: a.quota for a in self.accounts.values()}
        quotas[ANONYMOUS] = self.anonymous_quota
        return AccountLimits({a.number: a.name for a in self.accounts.values()}, quotas)

    def get(self, name: str) -> Account:
        if name not in self.accounts:
            known = ", ".join(sorted(self.accounts)) or "none yet"
            raise UsageError(f"no account named {name!r} on this server (accounts: {known})")
        return self.accounts[name]


def check_name(name: str) -> str:
    if name == "anonymous" or not _NAME.match(name):
        raise UsageError(
            f"{name[:60]!r} cannot name an account",
            hint="use 1-40 lowercase letters, digits, '.', '_' or '-' (not 'anonymous')",
        )
    return name


def _quota(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ConfigError(f"{where}: a quota is a number of bytes (or null), not {value!r}")


def load(path: Path) -> Accounts:
    """The accounts file (empty when there is none); ``ConfigError`` when damaged."""
    if not present(path):
        return Accounts()
    if path.stat().st_mode & 0o077:
        raise ConfigError(
            f"{path} can be read by others, and it holds swissnums; refusing to use it",
            hint=f"chmod 600 {path}",
        )
    try:
        doc = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{path} is not valid YAML; restore it from a backup") from None
    entries = doc.get("accounts", {}) if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"{path} must be a mapping with an 'accounts:' mapping")
    out = Accounts(anonymous_quota=_quota(doc.get("anonymous-quota"), str(path)))
    for name, entry in entries.items():
        ok = isinstance(name, str) and isinstance(entry, dict)
        number, swissnum = (entry.get("account"), entry.get("swissnum")) if ok else (None, None)
        if not (isinstance(number, int) and number >= FIRST_ACCOUNT and isinstance(swissnum, str)):
            raise ConfigError(f"{path}: account {str(name)[:40]!r} is damaged")
        out.accounts[name] = Account(name, number, swissnum, _quota(entry.get("quota"), str(path)))
    top = max((a.number for a in out.accounts.values()), default=FIRST_ACCOUNT - 1)
    next_number = doc.get("next-account", FIRST_ACCOUNT)
    out.next_number = max(top + 1, next_number if isinstance(next_number, int) else 0)
    return out


def save(path: Path, accounts: Accounts) -> None:
    doc = {
        "anonymous-quota": accounts.anonymous_quota,
        "next-account": accounts.next_number,
        "accounts": {
            a.name: {"account": a.number, "swissnum": a.swissnum, "quota": a.quota}
            for a in accounts.accounts.values()
        },
    }
    write_private(path, _HEADER + yaml.safe_dump(doc, sort_keys=True))


@contextlib.contextmanager
def editing(node: NodeDirectory) -> Iterator[Accounts]:
    """The accounts, locked against other edits; saved when the block ends well."""
    lock_path = node.private / "accounts.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        accounts = load(node.private / FILENAME)
        yield accounts
        save(node.private / FILENAME, accounts)
    finally:
        os.close(fd)


def new_account(accounts: Accounts, name: str, quota: int | None) -> Account:
    if check_name(name) in accounts.accounts:
        raise UsageError(f"there is already an account named {name!r}")
    account = Account(name, accounts.next_number, base32.b2a(os.urandom(32)), quota)
    accounts.accounts[name] = account
    accounts.next_number += 1
    return account


class ServerAccounts:
    """The running server's view of the accounts file (re-read when it changes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._by_header: dict[bytes, int] = {}
        self._accounts = load(path)  # a damaged file stops start-up
        self._index(self._accounts)

    def _index(self, accounts: Accounts) -> None:
        self._accounts = accounts
        self._by_header = {
            hashlib.sha256(authorization(a.swissnum)).digest(): a.number
            for a in accounts.accounts.values()
        }

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            seen = (0, 0, 0)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            self._index(load(self.path))
        except VeilError as exc:  # keep the last good accounts; say so once per change
            log.error("the accounts file was not re-read: %s", exc)

    def account_of(self, authorization: bytes) -> int | None:
        self._refresh()
        return self._by_header.get(hashlib.sha256(authorization).digest())

    def limits(self) -> AccountLimits:
        self._refresh()
        return self._accounts.limits()


def attach_accounts(
    node: NodeDirectory, server: StorageServer, usage: UsageSource | None
) -> ServerAccounts:
    """The accounts a starting server accepts; with the lease index (``usage``), its
    core counts and enforces quotas. Quotas without an index stop start-up."""
    accounts = ServerAccounts(node.private / FILENAME)
    if usage is not None:
        server.accounting = Accounting(usage, accounts.limits)
    elif any(q is not None for q in accounts.limits().quotas.values()):
        raise ConfigError(
            f"{accounts.path} sets quotas, but this storage backend keeps no lease index "
            "to count them",
            hint="use backend = disk or s3, or remove the quotas (veil account set-quota)",
        )
    return accounts


def account_figures_of(node: NodeDirectory) -> list[dict[str, Any]] | None:
    """Per-account figures of a storage node, read from its lease index (another
    process may be running the server); None when it has no index yet."""
    usage = read_account_usage(node.storage_dir() / INDEX_FILE)
    if usage is None:
        return None
    return account_figures(load(node.private / FILENAME).limits(), usage)


def _announced(node: NodeDirectory) -> dict[str, Any]:
    """The server's announcement: the running server's, else made from tahoe.cfg."""
    from veil.adapters.node.running import ANNOUNCEMENT, announcement, tahoe_hints

    path = node.private / ANNOUNCEMENT
    if present(path):
        doc = yaml.safe_load(read_text(path))
        if isinstance(doc, dict) and isinstance(doc.get("ann"), dict):
            return dict(doc["ann"])
    if node.tahoe_layout:
        tahoe_hints(node)  # says what is missing
        return announcement(node, None, 0)
    if node.get_bool("tor", "onion", False) or node.get_bool("i2p", "dest", False):
        raise UsageError(
            "this server's onion or I2P address is known only while it runs",
            hint="start it (veil run) and run this command again",
        )
    settings = node.storage_settings()
    if not settings.port:
        raise UsageError("this server has no fixed [storage] port yet; start it once first")
    return announcement(node, settings.hostname, settings.port)


def account_nurls(node: NodeDirectory, swissnum: str) -> list[str]:
    """The server's NURLs (same addresses and SPKI pin) with ``swissnum``."""
    nurls = _announced(node).get("anonymous-storage-NURLs") or []
    return [dataclasses.replace(parse_nurl(u), swissnum=swissnum).to_string() for u in nurls]


def servers_entry(node: NodeDirectory, swissnum: str) -> dict[str, Any]:
    """A ``servers.yaml`` document for a friend: this server, reached through the
    account (the NURLs, and the fURL Tahoe 1.20 clients require, carry its swissnum)."""
    ann = _announced(node)
    ann["anonymous-storage-NURLs"] = account_nurls(node, swissnum)
    furl = str(ann.get("anonymous-storage-FURL", ""))
    if furl:
        ann["anonymous-storage-FURL"] = furl.rsplit("/", 1)[0] + "/" + swissnum
    return {"storage": {node.node_id(): {"ann": ann}}}
