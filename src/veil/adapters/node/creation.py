"""Making a new node directory: settings checked first, secrets made once.

Nothing is written until the settings pass the same checks as loading
(``config_schema.validate``). The storage port is chosen here when none is
given (a free one, as Tahoe's ``create-node`` does) and written down, so the
node keeps its NURL at every start. Modes are explicit, whatever the umask.
"""

from __future__ import annotations

import configparser
import io
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from veil.adapters.node import server_lists
from veil.adapters.node.files import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    present,
    private_dir,
    write_private,
    write_public,
)
from veil.errors import ConfigError
from veil.formats import base32, config_schema
from veil.formats.params import EncodingParameters

if TYPE_CHECKING:
    from veil.formats.recovery_document import GridSettings


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (any free port if ``host`` is not local)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as s:
            s.bind((host.strip("[]"), 0))
            return int(s.getsockname()[1])
    except OSError:  # a name, or an address of another machine
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def config_text(config: configparser.ConfigParser) -> str:
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


def create_files(
    path: Path,
    *,
    nickname: str,
    storage: bool,
    port: int,
    hostname: str | None,
    params: EncodingParameters | None,
) -> None:
    """Write a new node directory at ``path``; refuse to overwrite one."""
    if present(path / "tahoe.cfg"):
        raise ConfigError(f"{path} already holds a node; refusing to overwrite it")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    p = params or EncodingParameters()
    cfg = configparser.ConfigParser(interpolation=None)
    cfg["node"] = {"nickname": nickname}
    cfg["client"] = {
        "shares.needed": str(p.needed),
        "shares.happy": str(p.happy),
        "shares.total": str(p.total),
    }
    cfg["storage"] = {
        "enabled": "true" if storage else "false",
        "port": str(port or free_port(hostname or "127.0.0.1")),
        "reserved_space": "0",
        "readonly": "false",
    }
    if hostname is not None:  # None: reached only as an onion service
        cfg["storage"]["hostname"] = hostname
    problems = config_schema.validate({s: dict(cfg[s]) for s in cfg.sections()}, "tahoe.cfg")
    if problems:  # checked before anything is written
        raise ConfigError(problems[0].removeprefix("tahoe.cfg: "), hint="nothing was created")
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    private_dir(path / "private")
    write_private(path / "private" / "node.privkey", "priv-v0-" + base32.b2a(seed) + "\n")
    write_public(path / "node.pubkey", "pub-v0-" + base32.b2a(pub) + "\n")
    for name, size in (("convergence", 32), ("secret", 32)):
        write_private(path / "private" / name, base32.b2a(os.urandom(size)) + "\n")
    write_private(path / "private" / "storage.swissnum", base32.b2a(os.urandom(20)) + "\n")
    from veil.adapters.http.tls import create_identity

    create_identity(path / "private" / "tls.key", path / "private" / "tls.crt")
    for name in ("tls.key", "tls.crt"):
        os.chmod(path / "private" / name, PRIVATE_FILE)
    write_private(path / "tahoe.cfg", config_text(cfg))


def create_client_from_grid(path: Path, grid: GridSettings) -> None:
    """A client node (no storage) for the grid a recovery blob describes: its
    introducers, static servers, encoding and anonymity settings (an anonymous
    grid gives a hide-ip node, which then starts only with Tor)."""
    from veil.adapters.node.nodedir import NodeDirectory

    k, happy, n = grid.encoding
    create_files(
        path,
        nickname="",
        storage=False,
        port=0,
        hostname=None,
        params=EncodingParameters(k, happy, n),
    )
    node = NodeDirectory(path)
    if grid.anonymous:
        node.config["node"]["reveal-IP-address"] = "false"
    for section, values in (("connections", grid.connections), ("tor", grid.tor)):
        if values:
            node.config[section] = dict(values)
    node.save_config()
    if grid.introducers:
        server_lists.write_introducers(path / "private" / "introducers.yaml", grid.introducers)
    if grid.servers:
        node.write_servers(grid.servers)
    NodeDirectory(path).require_network_allowed()  # what was written must pass
