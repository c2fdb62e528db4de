"""A configuration file without read permission stops every command (fail closed).

Root reads any file whatever its mode, so as root the command runs without
the capabilities that let it (``setpriv`` drops CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH): the kernel then refuses the read, as it would for
any other user. Before the fix such a file was skipped and defaults used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from veil.adapters.node.nodedir import NodeDirectory

pytestmark = pytest.mark.integration


def veil_without_read_override(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "veil.frontends.cli.main", *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE"
        drop = "-dac_override,-dac_read_search"
        command = [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", ["tahoe.cfg", "private/servers.yaml", "private/secret"])
def test_a_file_without_read_permission_stops_commands(tmp_path: Path, name: str) -> None:
    node = tmp_path / "n"
    NodeDirectory.create(node, params=None)
    path = node / name
    if not path.exists():
        path.write_text("storage: {}\n")
    path.chmod(0)
    for args in (("config", "get", "client.shares.total"), ("put", "-")):
        r = veil_without_read_override("-d", str(node), *args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        first = r.stderr.splitlines()[0]
        assert first.startswith("veil: error:") and "permission denied" in first, r.stderr
        assert name in first and "Traceback" not in r.stderr and r.stdout == ""
