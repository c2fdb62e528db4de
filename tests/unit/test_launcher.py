"""The ``veil`` executable's first step: which command, which node directory,
and which variables must match before a running node may run a command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from veil.frontends.cli.launcher import SERVED, command_and_node, env_that_matters, hand_over

ENV = {"VEIL_NODE_DIRECTORY": "/nodes/default"}


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["backup", "a", "b"], ("backup", "/nodes/default")),
        (["-d", "/n", "ls"], ("ls", "/n")),
        (["-d/n", "ls"], ("ls", "/n")),
        (["--node-directory", "/n", "cp", "-r", "x", "y"], ("cp", "/n")),
        (["--node-directory=/n", "mkdir"], ("mkdir", "/n")),
        (["--version"], ("", "/nodes/default")),
        (["-h", "ls"], ("", "/nodes/default")),
        (["-d"], ("", "/nodes/default")),
        ([], ("", "/nodes/default")),
    ],
)
def test_command_and_node_as_main_reads_them(argv: list[str], want: tuple[str, str]) -> None:
    assert command_and_node(argv, ENV) == want


def test_the_default_node_is_home_veil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert command_and_node(["ls"], {}) == ("ls", "/home/someone/.veil")


def test_only_tor_and_veil_variables_matter() -> None:
    env = {
        "TOR_SOCKS_PORT": "9150",
        "VEIL_X": "1",
        "I2P_SAM": "x",
        "HOME": "/h",
        "PATH": "/bin",
        "VEIL_NODE_DIRECTORY": "/n",
        "VEIL_STANDALONE": "0",
    }
    assert env_that_matters(env) == {"TOR_SOCKS_PORT": "9150", "VEIL_X": "1", "I2P_SAM": "x"}


def test_commands_that_ask_for_secrets_or_run_nodes_are_not_served() -> None:
    assert {"recovery", "run", "create-node"}.isdisjoint(SERVED)
    assert {"backup", "restore", "ls", "cp", "put", "get"} <= SERVED


def test_without_a_socket_the_command_runs_here(tmp_path: Path) -> None:
    assert hand_over(["-d", str(tmp_path), "ls"]) is None


def test_a_socket_nobody_listens_on_runs_here(tmp_path: Path) -> None:
    import socket

    (tmp_path / "private").mkdir()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp_path / "private" / "cli.sock"))
    s.close()  # bound, never listening: what a killed node leaves
    assert hand_over(["-d", str(tmp_path), "ls"]) is None


def test_the_launcher_runs_main_when_no_node_serves(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "veil.frontends.cli.launcher", "-d", str(tmp_path), "ls"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("veil: error: unknown alias 'tahoe'")
