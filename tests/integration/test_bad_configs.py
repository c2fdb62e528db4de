"""Bad configurations tried as a new user would: each gives one clear line."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]


def veil(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*VEIL, *args], input=input, capture_output=True, timeout=60)


def one_clear_line(r: subprocess.CompletedProcess[bytes], text: bytes) -> None:
    assert r.returncode == 1, r
    assert r.stderr.startswith(b"veil: error:") and text in r.stderr, r.stderr
    assert b"Traceback" not in r.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert veil("create-node", str(tmp_path / "n"), "--port", str(port)).returncode == 0
        one_clear_line(veil("run", str(tmp_path / "n")), b"cannot listen on 127.0.0.1:%d" % port)


def test_unwritable_directory(tmp_path: Path) -> None:
    one_clear_line(veil("create-node", "/proc/veil-test-node"), b"/proc/veil-test-node")


def test_missing_introducer_and_no_cache(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nurl = f"pb://{'A' * 43}@127.0.0.1:{port}/swiss#v=1"
    assert veil("create-client", str(tmp_path / "c"), "--introducer", nurl).returncode == 0
    one_clear_line(
        veil("-d", str(tmp_path / "c"), "put", "-", input=b"x" * 100),
        b"no storage servers are known",
    )


def test_typo_in_option_and_wrong_types(tmp_path: Path) -> None:
    r = veil("create-node", str(tmp_path / "n"), "--shares-neded", "3")
    assert r.returncode == 2 and b"unrecognized arguments" in r.stderr
    r = veil("create-node", str(tmp_path / "n"), "--shares-needed", "three")
    assert r.returncode == 2 and b"invalid int value" in r.stderr
    one_clear_line(
        veil("create-node", str(tmp_path / "n"), "--shares-needed", "20"), b"shares.needed=20"
    )
    assert not (tmp_path / "n").exists()
