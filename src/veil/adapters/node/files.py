"""Reading and writing a node directory's files: fail closed, explicit modes.

Every configuration or secret file of a node is read through ``read_text``:
a file that exists but cannot be read (a directory in its place, no
permission, a dangling link) or is not UTF-8 text raises ``ConfigError``
with one line naming the file, so no command ever falls back to defaults.

Files are written with explicit modes that do not depend on the umask:
secrets 0600 (``write_private``), public files 0644 (``write_public``),
directories that hold secrets 0700 (``private_dir``). Writes go through a
temporary file and ``os.replace``, so a reader never sees half a file.

Not for share data (``veil.adapters.storage.disk``) nor aliases.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
from pathlib import Path

from veil.errors import ConfigError, VeilError
from veil.formats import base32

PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644
PRIVATE_DIR = 0o700
# private/ files checked at every load: (name, decoded length or 0 for any, prefix)
SECRETS = (
    ("convergence", 32, ""),
    ("secret", 32, ""),
    ("storage.swissnum", 0, ""),
    ("introducer.swissnum", 0, ""),
    ("node.privkey", 32, "priv-v0-"),
)
log = logging.getLogger("veil.config")
_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Log a configuration warning, once per process."""
    if message not in _warned:
        _warned.add(message)
        log.warning("warning: %s", message)


def read_text(path: Path) -> str:
    """The text of a configuration file (a leading UTF-8 BOM is dropped, as Tahoe does)."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a file; refusing to go on") from None
    except PermissionError:
        raise ConfigError(
            f"{path} cannot be read (permission denied); refusing to go on",
            hint="run veil as the node's owner, or fix the file's permissions",
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing (or a dangling link); refusing to go on") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (bad byte at offset {exc.start}); refusing to go on"
        ) from None


def present(path: Path) -> bool:
    """True when something (even a dangling link or a directory) sits at ``path``."""
    return os.path.lexists(path)


def _write(path: Path, data: str | bytes, mode: int) -> None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask does not decide
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_private(path: Path, data: str | bytes) -> None:
    """Write a secret: mode 0600 whatever the umask, atomically."""
    _write(path, data, PRIVATE_FILE)


def write_public(path: Path, data: str | bytes, mode: int = PUBLIC_FILE) -> None:
    """Write a file others may read (mode 0644 unless told), atomically."""
    _write(path, data, mode)


def private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) and set it to 0700 whatever the umask."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)


def parse_config(text: str, path: Path) -> configparser.ConfigParser:
    """``tahoe.cfg`` text as a ConfigParser; ``ConfigError`` if it is not INI."""
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(text, source=str(path))
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path} cannot be parsed: {first}") from None
    return config


def check_secrets(private: Path) -> None:
    """Fail closed on an empty or malformed secret in ``private`` (a missing one
    fails when it is needed: Tahoe makes some of them only when first used)."""
    for name, size, prefix in SECRETS:
        path = private / name
        if not present(path):
            continue
        text = read_text(path).strip()
        try:
            raw = base32.a2b(text.removeprefix(prefix)) if text.startswith(prefix) else b""
        except (VeilError, ValueError):
            raw = b""
        if not raw or (size and len(raw) != size):
            what = f"{prefix}base32 text" + (f" of {size} bytes" if size else "")
            raise ConfigError(
                f"{path} is empty or damaged (expected {what})",
                hint="restore it from a backup of this node directory",
            )
