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
    NODEDIR/storage/                  shares, Tahoe's storage layout
    NODEDIR/announcement.yaml         written by a running storage node

Every secret is made once, at creation, so a copy of the directory is a
complete backup of the node.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.errors import ConfigError
from veil.formats import base32, config_schema
from veil.formats.params import EncodingParameters

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def write_private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


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
        if not self.config_path.exists():
            raise ConfigError(
                f"{path} is not a veil node directory (no tahoe.cfg)",
                hint="create one with: veil create-node DIR",
            )
        self.config = configparser.ConfigParser(interpolation=None)
        try:
            self.config.read(self.config_path, encoding="utf-8")
        except configparser.Error as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{self.config_path} cannot be parsed: {first}") from None
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
        if not path.exists():
            write_private(path, OnionKey.from_seed(os.urandom(32)).to_blob() + "\n")
        try:
            return parse_key_blob(path.read_text())
        except Exception as exc:
            raise ConfigError(f"{path} is not an onion key: {exc}") from None

    def recorded_onion(self) -> str | None:
        """The onion address this node announced before (``tub.location``), if any."""
        for hint in self.get("node", "tub.location", "").split(","):
            parts = hint.strip().split(":")
            if len(parts) == 3 and parts[0] == "tor" and parts[1].endswith(".onion"):
                return parts[1].lower()
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
        """Make a new node directory with fresh secrets; refuse to overwrite one."""
        if (path / "tahoe.cfg").exists():
            raise ConfigError(f"{path} already holds a node; refusing to overwrite it")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        p = params or EncodingParameters()
        (path / "private").mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path / "private", 0o700)
        cfg = configparser.ConfigParser(interpolation=None)
        cfg["node"] = {"nickname": nickname or path.name}
        cfg["client"] = {
            "shares.needed": str(p.needed),
            "shares.happy": str(p.happy),
            "shares.total": str(p.total),
        }
        cfg["storage"] = {
            "enabled": "true" if storage else "false",
            "port": str(port),
            "reserved_space": "0",
            "readonly": "false",
        }
        if hostname is not None:  # None: reached only as an onion service
            cfg["storage"]["hostname"] = hostname
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes_raw()
        pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        write_private(path / "private" / "node.privkey", "priv-v0-" + base32.b2a(seed) + "\n")
        (path / "node.pubkey").write_text("pub-v0-" + base32.b2a(pub) + "\n")
        for name, size in (("convergence", 32), ("secret", 32)):
            write_private(path / "private" / name, base32.b2a(os.urandom(size)) + "\n")
        write_private(path / "private" / "storage.swissnum", base32.b2a(os.urandom(20)) + "\n")
        from veil.adapters.http.tls import create_identity

        create_identity(path / "private" / "tls.key", path / "private" / "tls.crt")
        with open(path / "tahoe.cfg", "w", encoding="utf-8") as f:
            cfg.write(f)
        return cls(path)

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

    # -- secrets ------------------------------------------------------------

    def _secret(self, name: str) -> bytes:
        path = self.private / name
        try:
            return base32.a2b(path.read_text().strip())
        except FileNotFoundError:
            raise ConfigError(f"{path} is missing; this node directory is incomplete") from None
        except Exception:
            raise ConfigError(f"{path} is damaged (expected base32 text)") from None

    def convergence_secret(self) -> bytes:
        return self._secret("convergence")

    def lease_secret(self) -> bytes:
        return self._secret("secret")

    def swissnum(self) -> str:
        return (self.private / "storage.swissnum").read_text().strip()

    def node_key(self) -> Ed25519PrivateKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        text = (self.private / "node.privkey").read_text().strip()
        return Ed25519PrivateKey.from_private_bytes(base32.a2b(text.removeprefix("priv-v0-")))

    def node_id(self) -> str:
        text = (self.path / "node.pubkey").read_text().strip()
        return "v0-" + text.removeprefix("pub-v0-")

    # -- static servers -----------------------------------------------------

    def servers(self) -> dict[str, dict[str, Any]]:
        """``private/servers.yaml`` as {server id: announcement dict}."""
        import yaml

        path = self.private / "servers.yaml"
        if not path.exists():
            return {}
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None
        storage = doc.get("storage") if isinstance(doc, dict) else None
        if not isinstance(storage, dict):
            raise ConfigError(f"{path} must have a top-level 'storage:' mapping")
        out: dict[str, dict[str, Any]] = {}
        for server_id, entry in storage.items():
            ann = entry.get("ann") if isinstance(entry, dict) else None
            if not isinstance(ann, dict):
                raise ConfigError(f"{path}: server {server_id} has no 'ann:' mapping")
            out[str(server_id)] = ann
        return out

    def introducers(self) -> dict[str, str]:
        """``private/introducers.yaml`` as {petname: introducer NURL}."""
        import yaml

        path = self.private / "introducers.yaml"
        if not path.exists():
            return {}
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            raise ConfigError(f"{path} is not valid YAML") from None
        entries = doc.get("introducers") if isinstance(doc, dict) else None
        if not isinstance(entries, dict):
            raise ConfigError(f"{path} must have a top-level 'introducers:' mapping")
        out = {}
        for petname, entry in entries.items():
            furl = entry.get("furl") if isinstance(entry, dict) else None
            if not isinstance(petname, str) or not isinstance(furl, str):
                raise ConfigError(f"{path}: introducer {petname!r} needs a string 'furl:'")
            out[petname] = furl
        return out

    def add_introducer(self, petname: str, nurl: str) -> None:
        import yaml

        entries = self.introducers()
        entries[petname] = nurl
        doc = {"introducers": {p: {"furl": f} for p, f in entries.items()}}
        write_private(self.private / "introducers.yaml", yaml.safe_dump(doc))

    def next_seqnum(self) -> int:
        """A new announcement sequence number, kept in ``announcement-seqnum``."""
        path = self.path / "announcement-seqnum"
        try:
            current = int(path.read_text().strip())
        except (OSError, ValueError):
            current = 0
        path.write_text(f"{current + 1}\n")
        return current + 1

    def write_servers(self, servers: dict[str, dict[str, Any]]) -> None:
        import yaml

        doc = {"storage": {sid: {"ann": ann} for sid, ann in servers.items()}}
        write_private(self.private / "servers.yaml", yaml.safe_dump(doc, sort_keys=True))
