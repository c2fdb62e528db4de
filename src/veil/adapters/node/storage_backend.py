"""The share backend a storage node uses, from its ``tahoe.cfg``: disk or S3.

``[storage] backend = disk`` (the default) keeps shares in ``storage_dir`` in
Tahoe's layout. ``backend = s3`` keeps them in a bucket (docs/s3.md):
``s3.endpoint``, ``s3.bucket``, ``s3.prefix`` and ``s3.region`` come from
tahoe.cfg, the keys from ``private/s3.credentials`` only (AWS's shared
credentials format, a ``[default]`` section; mode 0600 or stricter), never
from tahoe.cfg, the environment or ``~/.aws``, and never logged.
``storage_dir`` then holds only the spool of uploads in progress.

Fail-closed: a node that must not reveal its IP address refuses an S3
endpoint that is not on this machine (the store would see the address), and
any problem (no bucket, wrong keys, store unreachable) stops start-up with
one line.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from urllib.parse import urlsplit

from veil.adapters.node.files import parse_config, present, read_text
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.storage.disk import DiskBackend
from veil.adapters.storage.s3_client import S3Credentials, S3Missing, S3Settings
from veil.errors import ConfigError
from veil.services.storage.backend import Backend

CREDENTIALS = "s3.credentials"  # in private/
_FORMAT_HINT = (
    "write private/s3.credentials (mode 0600) as:  [default]  "
    "aws_access_key_id = ...  aws_secret_access_key = ..."
)


def read_credentials(node: NodeDirectory) -> S3Credentials:
    path = node.private / CREDENTIALS
    if not present(path):
        raise ConfigError(
            f"{path} is missing: [storage] backend = s3 needs the bucket's keys", hint=_FORMAT_HINT
        )
    if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} can be read by other users; refusing to use S3 keys others may have seen",
            hint=f"chmod 600 {path}, and change the keys if others could read them",
        )
    config = parse_config(read_text(path), path)
    section = config["default"] if config.has_section("default") else None
    key_id = section.get("aws_access_key_id", "").strip() if section else ""
    secret = section.get("aws_secret_access_key", "").strip() if section else ""
    if not key_id or not secret:
        raise ConfigError(
            f"{path} has no [default] aws_access_key_id and aws_secret_access_key",
            hint=_FORMAT_HINT,
        )
    token = section.get("aws_session_token", "").strip() if section else ""
    return S3Credentials(key_id, secret, token)


def _on_this_machine(endpoint: str) -> bool:
    host = (urlsplit(endpoint).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def s3_settings(node: NodeDirectory) -> S3Settings:
    where = f"{node.config_path}: [storage]"
    endpoint = node.get("storage", "s3.endpoint", "").strip()
    bucket = node.get("storage", "s3.bucket", "").strip()
    if not bucket:
        raise ConfigError(
            f"{where} backend = s3 needs s3.bucket",
            hint="name an existing bucket: s3.bucket = NAME",
        )
    if node.hides_ip and not (endpoint and _on_this_machine(endpoint)):
        shown = endpoint or "AWS"
        raise ConfigError(
            f"{where} s3.endpoint ({shown}) would see this server's IP address, "
            "and the node must not reveal it",
            hint="use an S3 store on this machine (http://127.0.0.1:PORT), or set "
            "[node] reveal-IP-address = true",
        )
    return S3Settings(
        endpoint=endpoint,
        bucket=bucket,
        prefix=node.get("storage", "s3.prefix", "").strip(),
        region=node.get("storage", "s3.region", "us-east-1").strip() or "us-east-1",
        credentials=read_credentials(node),
    )


def open_storage_backend(node: NodeDirectory) -> Backend:
    """The backend ``[storage] backend`` names; for S3, connected and checked."""
    kind = node.get("storage", "backend", "disk").strip().lower() or "disk"
    if kind == "disk":
        return DiskBackend(node.storage_dir())
    from veil.adapters.storage.s3 import S3Backend

    settings = s3_settings(node)
    target = f"bucket {settings.bucket!r} at {settings.endpoint or 'AWS'}"
    try:
        return S3Backend(settings, spool_dir=node.storage_dir() / "s3-spool")
    except S3Missing:
        raise ConfigError(
            f"S3 {target} does not exist", hint="create the bucket, or fix [storage] s3.bucket"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot use S3 {target}: {exc.strerror or exc}",
            hint="check [storage] s3.endpoint and s3.region, the keys in "
            "private/s3.credentials, and that the store is running",
        ) from None
