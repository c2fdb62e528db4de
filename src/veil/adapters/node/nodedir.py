"""A node directory on disk: ``tahoe.cfg``, secrets in ``private/``, shares.

Layout (Tahoe-compatible where Tahoe has the same file):

    NODEDIR/tahoe.cfg                 INI configuration
    NODEDIR/node.pubkey               pub-v0-<b32 ed25519 public key>
    NODEDIR/private/node.privkey      priv-v0-<b32 ed25519 seed>          (0600)
    NODEDIR/private/convergence       b32 convergence secret              (0600)
    NODEDIR/private/secret            b32 lease secret                    (0600)
    NODEDIR/private/storage.swissnum  swissnum of the storage service     (0600)
    NODEDIR/private/tls.key, tls.crt  the storage server's TLS identity   (0600)
    NODEDIR/private/servers.yaml      static servers, Tahoe's format
    NODEDIR/private/announcement.yaml written by a running storage node  (0600)
    NODEDIR/storage/                  shares, Tahoe's storage layout

Every secret is made once, at creation, so a copy of the directory is a
complete backup of the node. Modes are set whatever the umask: the node
directory and ``private/`` 0700, ``tahoe.cfg`` 0600 (it may hold fURLs),
secrets 0600, ``node.pubkey`` 0644.

A node directory made by Tahoe-LAFS 1.20 opens as it is (``tahoe_layout``):
its TLS identity is ``private/node.pem``, its storage swissnum the one in
``private/storage.furl``; veil reads those files and never writes them.
Every file is read fail-closed (``veil.adapters.node.files``): one that is
there but unreadable stops the command, and so does an empty or malformed
secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.adapters.node import server_lists
from veil.adapters.node.files import (
    check_secrets,
    parse_config,
    present,
    read_text,
    warn_once,
    write_private,
    write_public,
)
from veil.errors import ConfigError, VeilError
from veil.formats import base32, config_schema
from veil.formats.params import EncodingParameters

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from veil.formats.nurl import FURL

__all__ = ["NodeDirectory", "StorageSettings", "parse_size", "write_private"]


@dataclass(frozen=True)
class StorageSettings:
    enabled: bool
    port: int
    hostname: str
    reserved_space: int
    readonly: bool


def parse_size(text: str, *, key: str) -> int:
    """Parse ``1G``, ``500M``, ``10k`` or plain bytes."""
    t = text.strip().upper().removesuffix("B")
    mult = 1
    for suffix, m in (("K", 10**3), ("M", 10**6), ("G", 10**9), ("T", 10**12)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
            break
    try:
        return int(float(t) * mult)
    except ValueError:
        raise ConfigError(f"{key} = {text!r} is not a size (examples: 1G, 500M, 0)") from None


class NodeDirectory:
    """One node's directory. ``create`` makes a new one; the constructor opens one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config_path = path / "tahoe.cfg"
        if not present(self.config_path):
            raise ConfigError(
                f"{path} is not a veil node directory (no tahoe.cfg)",
                hint="create one with: veil create-node DIR",
            )
        self.config = parse_config(read_text(self.config_path), self.config_path)
        sections = {s: dict(self.config[s]) for s in self.config.sections()}
        problems = config_schema.validate(sections, str(self.config_path))
        if problems:
            more = (
                f"{len(problems) - 1} more problem(s) after this one; " if len(problems) > 1 else ""
            )
            raise ConfigError(
                problems[0], hint=more + "fix tahoe.cfg by hand or with: veil config set"
            )
        self.hides_ip = config_schema.hides_ip(sections)
        self._sections = sections
        check_secrets(self.private)
        self.servers()  # every file that is there must read and parse
        self.introducers()
        for line in config_schema.ignored(sections):
            warn_once(f"{self.config_path}: {line}")
        if self.hides_ip and self.get("node", "nickname", "").strip():
            warn_once(
                f"{self.config_path}: [node] nickname is set and announced to every server "
                "and introducer; a name can identify you even when your IP address is hidden"
            )

    @property
    def tahoe_layout(self) -> bool:
        """True for a node directory made by Tahoe (``node.pem``, no veil TLS files)."""
        return present(self.private / "node.pem") and not present(self.private / "tls.crt")

    def tls_files(self) -> tuple[Path, Path] | None:
        """(key, certificate) of the storage server's TLS identity, or None if not made."""
        key, cert = self.private / "tls.key", self.private / "tls.crt"
        if present(key) and present(cert):
            return key, cert
        if self.tahoe_layout:
            return self.private / "node.pem", self.private / "node.pem"
        return None

    def certificate_pem(self) -> bytes:
        files = self.tls_files()
        if files is None:
            raise ConfigError(f"{self.private} holds no TLS identity (tls.crt or node.pem)")
        return read_text(files[1]).encode("ascii", "replace")

    def require_network_allowed(self) -> None:
        """Fail closed: a node that hides its IP address starts only if no setting
        would reveal it (every problem is listed, each says what to change)."""
        if not self.hides_ip:
            return
        from veil.formats.tor_settings import privacy_problems

        problems = privacy_problems(self._sections)
        if problems:
            listed = "\n  - ".join(problems)
            raise ConfigError(
                f"{self.config_path} asks never to reveal your IP address "
                f"(reveal-IP-address = false), but:\n  - {listed}\n"
                "refusing to start rather than reveal it",
                hint="change those settings in tahoe.cfg (or: veil config set SECTION KEY VALUE)",
            )

    def onion_key(self) -> str:
        """The onion service key blob (``ED25519-V3:…``), made on first use."""
        from veil.formats.onion import OnionKey, parse_key_blob

        name = self.get("tor", "onion.private_key_file", "private/tor_onion.privkey").strip()
        path = self.path / name
        if not present(path):
            write_private(path, OnionKey.from_seed(os.urandom(32)).to_blob() + "\n")
        try:
            return parse_key_blob(read_text(path))
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"{path} is not an onion key: {exc}") from None

    def recorded_onion(self) -> str | None:
        """The onion address this node announced before (``tub.location``), if any."""
        from veil.formats.tor_settings import onion_of_hint

        for hint in self.get("node", "tub.location", "").split(","):
            onion = onion_of_hint(hint)
            if onion is not None:
                return onion
        return None

    def section(self, name: str) -> dict[str, str]:
        """One section's keys (lower case) and values, empty if absent."""
        return {k.lower(): v for k, v in self._sections.get(name, {}).items()}

    @property
    def private(self) -> Path:
        return self.path / "private"

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        nickname: str = "",
        storage: bool = True,
        port: int = 0,
        hostname: str | None = "127.0.0.1",
        params: EncodingParameters | None = None,
    ) -> NodeDirectory:
        """Make a new node directory with fresh secrets; refuse to overwrite one
        (``veil.adapters.node.creation``: ``port`` 0 picks a port to keep)."""
        from veil.adapters.node.creation import create_files

        create_files(
            path, nickname=nickname, storage=storage, port=port, hostname=hostname, params=params
        )
        return cls(path)

    def save_config(self) -> None:
        """Write ``self.config`` to ``tahoe.cfg`` atomically, mode 0600."""
        import io

        text = io.StringIO()
        self.config.write(text)
        write_private(self.config_path, text.getvalue())

    # -- settings ---------------------------------------------------------

    def get(self, section: str, key: str, default: str) -> str:
        return self.config.get(section, key, fallback=default)

    def get_int(self, section: str, key: str, default: int) -> int:
        value = self.get(section, key, str(default))
        try:
            return int(value)
        except ValueError:
            raise ConfigError(
                f"{self.config_path}: [{section}] {key} = {value!r} must be a whole number"
            ) from None

    def get_bool(self, section: str, key: str, default: bool) -> bool:
        value = self.get(section, key, "true" if default else "false").strip().lower()
        if value in ("true", "yes", "on", "1"):
            return True
        if value in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{self.config_path}: [{section}] {key} = {value!r} must be true/false")

    def encoding_parameters(self) -> EncodingParameters:
        maxseg = self.get_int("client", "shares._max_immutable_segment_size_for_testing", 1 << 20)
        try:
            return EncodingParameters(
                self.get_int("client", "shares.needed", 3),
                self.get_int("client", "shares.happy", 7),
                self.get_int("client", "shares.total", 10),
                maxseg,
            )
        except Exception as exc:
            raise ConfigError(f"{self.config_path}: {exc}") from None

    def storage_settings(self) -> StorageSettings:
        return StorageSettings(
            enabled=self.get_bool("storage", "enabled", True),
            port=self.get_int("storage", "port", 0),
            hostname=self.get("storage", "hostname", "127.0.0.1"),
            reserved_space=parse_size(
                self.get("storage", "reserved_space", "0"), key="reserved_space"
            ),
            readonly=self.get_bool("storage", "readonly", False),
        )

    def storage_dir(self) -> Path:
        """Where shares live: ``[storage] storage_dir`` (relative to the node), as Tahoe."""
        name = self.get("storage", "storage_dir", "storage").strip() or "storage"
        return self.path / os.path.expanduser(name)

    # -- secrets ------------------------------------------------------------

    def _read_private(self, name: str) -> str:
        path = self.private / name
        if not present(path):
            raise ConfigError(f"{path} is missing; this node directory is incomplete")
        return read_text(path).strip()

    def _secret(self, name: str) -> bytes:
        path = self.private / name
        try:
            return base32.a2b(self._read_private(name))
        except ConfigError:
            raise
        except Exception:
            raise ConfigError(f"{path} is damaged (expected base32 text)") from None

    def convergence_secret(self) -> bytes:
        return self._secret("convergence")

    def lease_secret(self) -> bytes:
        return self._secret("secret")

    def swissnum(self) -> str:
        """The storage swissnum: veil's ``storage.swissnum``, or a Tahoe node's, from
        ``private/storage.furl`` (Tahoe 1.20 serves HTTPS storage under the fURL's)."""
        if present(self.private / "storage.swissnum") or not present(self.private / "storage.furl"):
            return self._read_private("storage.swissnum")
        return self.storage_furl().swissnum

    def storage_furl(self) -> FURL:
        """A Tahoe node's ``private/storage.furl``, parsed."""
        from veil.formats.nurl import parse_furl

        try:
            return parse_furl(self._read_private("storage.furl"))
        except VeilError:
            raise ConfigError(f"{self.private / 'storage.furl'} is not a fURL") from None

    def permutation_seed(self) -> str:
        """The seed announced to clients: Tahoe's ``permutation-seed`` file if there is
        one, else the b32 of the node id text (what Tahoe writes for a new node)."""
        if present(self.path / "permutation-seed"):
            return read_text(self.path / "permutation-seed").strip()
        return base32.b2a(self.node_id().removeprefix("v0-").encode("ascii"))

    def node_key(self) -> Ed25519PrivateKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        text = self._read_private("node.privkey")
        return Ed25519PrivateKey.from_private_bytes(base32.a2b(text.removeprefix("priv-v0-")))

    def node_id(self) -> str:
        path = self.path / "node.pubkey"
        if not present(path):
            raise ConfigError(f"{path} is missing; this node directory is incomplete")
        return "v0-" + read_text(path).strip().removeprefix("pub-v0-")

    # -- static servers and introducers (veil.adapters.node.server_lists) ---

    def servers(self) -> dict[str, dict[str, Any]]:
        """``private/servers.yaml`` as {server id: announcement dict}."""
        return server_lists.read_servers(self.private / "servers.yaml")

    def introducers(self) -> dict[str, str]:
        """``private/introducers.yaml`` as {petname: introducer NURL}."""
        return server_lists.read_introducers(self.private / "introducers.yaml")

    def add_introducer(self, petname: str, nurl: str) -> None:
        entries = self.introducers()
        entries[petname] = nurl
        server_lists.write_introducers(self.private / "introducers.yaml", entries)

    def write_servers(self, servers: dict[str, dict[str, Any]]) -> None:
        server_lists.write_servers(self.private / "servers.yaml", servers)

    def next_seqnum(self) -> int:
        """A new announcement sequence number, kept in ``announcement-seqnum``."""
        path = self.path / "announcement-seqnum"
        current = 0
        if present(path):
            try:
                current = int(read_text(path).strip() or "0")
            except ValueError:
                raise ConfigError(f"{path} is damaged (expected a number)") from None
        write_public(path, f"{current + 1}\n")
        return current + 1
