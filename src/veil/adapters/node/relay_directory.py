"""A relay's directory: where it listens, and the backends it admits.

    RELAYDIR/relay.cfg               [relay] listen = HOST:PORT (tunnels and SNI clients)
                                             public_host = NAME (what tickets name)
                                             public_port = PORT (default: the listen port)
    RELAYDIR/private/backends.yaml   {name: {secret, port, sni}} (0600: the secrets)

A backend is admitted with ``add_backend``, which makes its secret and returns
its ticket; its own port (for clients that send no SNI, such as Tahoe 1.20)
is optional, and without one it is reached by the SNI name
``NAME.public_host`` on the shared port. The files are read fail-closed
(``veil.adapters.node.files``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from veil.adapters.net.relay import RelayBackend
from veil.adapters.node.files import (
    parse_config,
    present,
    private_dir,
    read_text,
    write_private,
    write_public,
)
from veil.errors import ConfigError, UsageError, VeilError
from veil.formats.nurl import normalize_host
from veil.formats.relay_protocol import (
    SECRET_SIZE,
    RelayTicket,
    check_name,
    parse_secret,
    secret_text,
)

CONFIG = "relay.cfg"
BACKENDS = "backends.yaml"
DEFAULT_PORT = 4430


@dataclass(frozen=True)
class RelaySettings:
    listen_host: str
    listen_port: int
    public_host: str
    public_port: int


class RelayDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.config_path = path / CONFIG
        self.backends_path = path / "private" / BACKENDS

    @classmethod
    def create(
        cls, path: Path, listen: str, public_host: str, public_port: int | None
    ) -> RelayDirectory:
        if (path / CONFIG).exists():
            raise UsageError(f"{path} is already a relay directory", hint="nothing was changed")
        _host_port(listen, "--listen")
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_dir(path / "private")
        lines = ["[relay]", f"listen = {listen}", f"public_host = {normalize_host(public_host)}"]
        if public_port is not None:
            lines.append(f"public_port = {public_port}")
        write_public(path / CONFIG, "\n".join(lines) + "\n")
        write_private(path / "private" / BACKENDS, yaml.safe_dump({}))
        return cls(path)

    def settings(self) -> RelaySettings:
        if not present(self.config_path):
            raise ConfigError(f"{self.path} is not a relay directory", hint="veil relay create DIR")
        cfg = parse_config(read_text(self.config_path), self.config_path)
        section = cfg["relay"] if cfg.has_section("relay") else {}
        host, port = _host_port(section.get("listen", f"0.0.0.0:{DEFAULT_PORT}"), "[relay] listen")
        public_host = section.get("public_host", "").strip()
        if not public_host:
            raise ConfigError(f"{self.config_path}: [relay] public_host is not set")
        public_port = _port(section.get("public_port", str(port)), "[relay] public_port")
        return RelaySettings(host, port, normalize_host(public_host), public_port)

    def _entries(self) -> dict[str, dict[str, Any]]:
        if not present(self.backends_path):
            return {}
        try:
            data = yaml.safe_load(read_text(self.backends_path)) or {}
        except yaml.YAMLError:
            raise ConfigError(f"{self.backends_path} is not YAML; refusing to go on") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.backends_path} must map backend names to their settings")
        return data

    def backends(self) -> dict[str, RelayBackend]:
        public = self.settings().public_host
        out = {}
        for name, entry in self._entries().items():
            try:
                check_name(str(name))
                secret = parse_secret(str(entry["secret"]))
                port = entry.get("port")
                sni = tuple(
                    normalize_host(str(s)) for s in entry.get("sni") or [f"{name}.{public}"]
                )
            except (VeilError, KeyError, TypeError, AttributeError):
                raise ConfigError(
                    f"{self.backends_path}: the entry for {str(name)[:40]!r} is damaged"
                ) from None
            out[str(name)] = RelayBackend(str(name), secret, int(port) if port else None, sni)
        return out

    def add_backend(self, name: str, port: int | None, sni: list[str]) -> RelayTicket:
        check_name(name)
        settings = self.settings()
        entries = self._entries()
        if name in entries:
            raise UsageError(f"backend {name!r} is already admitted", hint="nothing was changed")
        used = {e.get("port") for e in entries.values()} | {settings.listen_port}
        if port is not None and port in used:
            raise UsageError(f"port {port} is already taken on this relay", hint="choose another")
        secret = os.urandom(SECRET_SIZE)
        names = [normalize_host(s) for s in sni] or [f"{name}.{settings.public_host}"]
        entries[name] = {"secret": secret_text(secret), "port": port, "sni": names}
        write_private(self.backends_path, yaml.safe_dump(entries))
        public = (settings.public_host, port) if port else (names[0], settings.public_port)
        return RelayTicket(name, secret, settings.public_host, settings.public_port, *public)

    def remove_backend(self, name: str) -> None:
        entries = self._entries()
        if name not in entries:
            raise UsageError(f"no backend {name[:40]!r} on this relay")
        del entries[name]
        write_private(self.backends_path, yaml.safe_dump(entries))


def _port(text: str, what: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{what} = {text[:20]!r}: a port is a number from 1 to 65535")
    return int(text)


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what} = {text[:60]!r}: expected HOST:PORT, e.g. 0.0.0.0:4430")
    return host.strip("[]"), _port(port, what)
