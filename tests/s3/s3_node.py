"""A ``veil run`` storage node whose shares live in S3, for the tests in tests/s3.

``S3StorageNode.create`` makes a node directory with ``[storage] backend = s3``
and the keys in ``private/s3.credentials``; ``start`` runs ``veil run`` in a
process of its own and waits for its announcement; ``stop`` ends it by the
PID it started. ``client_node`` makes a client node directory using it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from veil.adapters.node.files import write_private
from veil.adapters.node.nodedir import NodeDirectory
from veil.adapters.storage.s3_client import S3Settings
from veil.formats.params import EncodingParameters

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]
START_TIMEOUT = 60.0


def credentials_text(settings: S3Settings) -> str:
    c = settings.credentials
    return f"[default]\naws_access_key_id = {c.access_key_id}\naws_secret_access_key = {c.secret_access_key}\n"


def use_s3(path: Path, settings: S3Settings) -> None:
    """Point an existing node directory's storage at ``settings``."""
    node = NodeDirectory(path)
    if not node.config.has_section("storage"):
        node.config.add_section("storage")
    for key, value in {
        "backend": "s3",
        "s3.endpoint": settings.endpoint,
        "s3.bucket": settings.bucket,
        "s3.prefix": settings.prefix,
        "s3.region": settings.region,
    }.items():
        node.config.set("storage", key, value)
    node.save_config()
    write_private(path / "private" / "s3.credentials", credentials_text(settings))


class S3StorageNode:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen[bytes] | None = None
        self.server_id = ""
        self.ann: dict[str, Any] = {}

    @classmethod
    def create(cls, path: Path, settings: S3Settings) -> S3StorageNode:
        NodeDirectory.create(path, storage=True)
        use_s3(path, settings)
        return cls(path)

    def start(self) -> None:
        announcement = self.path / "private" / "announcement.yaml"
        announcement.unlink(missing_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)
        with open(self.path / "logs" / "veil.log", "ab") as log:
            self.process = subprocess.Popen(
                [*VEIL, "run", str(self.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not announcement.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"veil run exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("veil run did not announce in time")
            time.sleep(0.1)
        doc = yaml.safe_load(announcement.read_text())
        self.server_id, self.ann = doc["server_id"], doc["ann"]

    def log_tail(self) -> str:
        path = self.path / "logs" / "veil.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)


def client_node(path: Path, servers: list[S3StorageNode]) -> Path:
    """A veil client (2-of-3, happy 1) that uses ``servers``."""
    node = NodeDirectory.create(path, storage=False, params=EncodingParameters(2, 1, 3))
    node.write_servers({s.server_id: s.ann for s in servers})
    return path
