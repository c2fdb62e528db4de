"""veil check / deep-check on a real process grid: shares deleted and corrupted
on the servers' disks, found by check and --verify, repaired by --repair;
reads afterwards work from the repaired servers alone, and a mutable
directory's repair keeps its sequence number."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veil.formats.mutable_container import DATA_OFFSET
from veil.frontends.cli.grid import is_node_process

pytestmark = pytest.mark.integration
GRID = [sys.executable, "-m", "veil.frontends.cli.main", "grid"]


def _shares(grid: Path, si: str) -> list[Path]:
    return sorted(grid.glob(f"storage-*/storage/shares/{si[:2]}/{si}/*"))


def _stop(node: Path) -> None:
    pid = int((node / "veil.pid").read_text())
    assert is_node_process(pid, node)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (node / "veil.pid").unlink(missing_ok=True)


def test_check_verify_repair_on_a_real_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from veil.frontends.cli.main import main

    grid = tmp_path / "g"
    shares = ["--shares-needed", "2", "--shares-happy", "3", "--shares-total", "5"]
    subprocess.run([*GRID, "start", str(grid), "--servers", "6", *shares], check=True)
    node = str(grid / "client")

    def veil(*args: str, code: int = 0) -> str:
        got = main(["-d", node, *args])
        out, err = capsys.readouterr()
        assert got == code, err
        return out

    try:
        data = os.urandom(200_000)
        (tmp_path / "f.bin").write_bytes(data)
        veil("create-alias", "tahoe")
        veil("mkdir", "tahoe:d")
        veil("cp", str(tmp_path / "f.bin"), "tahoe:d/f.bin")
        cap = json.loads(veil("ls", "--json", "tahoe:d"))["f.bin"]["ro_uri"]
        first = json.loads(veil("check", "--json", cap))
        assert first["summary"] == "Healthy" and first["results"]["count-shares-good"] == 5
        si = first["storage-index"]
        files = _shares(grid, si)
        assert len(files) == 5
        for f in files[:2]:
            f.unlink()  # two shares lost
        raw = bytearray(files[2].read_bytes())
        raw[0x0C + 0x30] ^= 0xFF  # one corrupted inside its first block
        files[2].write_bytes(bytes(raw))
        assert "good-shares: 3 (encoding is 2-of-5)" in veil("check", cap)
        verified = json.loads(veil("check", "--verify", "--json", cap))["results"]
        assert verified["count-shares-good"] == 2 and verified["count-corrupt-shares"] == 1
        out = veil("check", "--verify", "--repair", cap)
        assert out.startswith("Summary: not healthy") and "repair successful" in out
        after = json.loads(veil("check", "--verify", "--json", cap))
        assert after["summary"] == "Healthy"
        # reads work from the repaired shares alone: stop the corrupt share's server
        _stop(files[2].parents[4])
        out_file = tmp_path / "back.bin"
        veil("get", cap, str(out_file))
        assert out_file.read_bytes() == data
        # a mutable directory: repair puts back the same version (same seqnum)
        d = json.loads(veil("check", "--json", "tahoe:d"))
        dsi = d["storage-index"]
        slots = _shares(grid, dsi)
        seq = {
            struct.unpack(">Q", p.read_bytes()[DATA_OFFSET + 1 : DATA_OFFSET + 9])[0] for p in slots
        }
        for p in slots[:2]:
            p.unlink()
        out = veil("check", "--repair", "tahoe:d")
        assert "repair successful" in out
        slots = _shares(grid, dsi)
        assert len(slots) >= 5  # (the stopped server may still hold one)
        assert json.loads(veil("check", "--json", "tahoe:d"))["summary"] == "Healthy"
        after_seq = {
            struct.unpack(">Q", p.read_bytes()[DATA_OFFSET + 1 : DATA_OFFSET + 9])[0] for p in slots
        }
        assert after_seq == seq and len(seq) == 1
        # a server is down: a deep repair puts what it held elsewhere
        assert "post-repair: 3 healthy, 0 unhealthy" in veil("deep-check", "--repair", "tahoe:")
        summary = veil("deep-check", "--verify", "tahoe:")
        assert summary == "done: 3 objects checked, 3 healthy, 0 unhealthy\n"
        # a renewal cap follows the tree once the owner refreshes its list
        renewal_cap = veil("renewal", "create", "tahoe:").strip()
        first_count = json.loads(veil("renew", renewal_cap, "--json"))["count-objects-checked"]
        (tmp_path / "g.bin").write_bytes(os.urandom(5000))
        veil("cp", str(tmp_path / "g.bin"), "tahoe:d/g.bin")
        assert "now name 4 objects" in veil("renewal", "refresh", "--all")
        renewed = json.loads(veil("renew", renewal_cap, "--json"))
        assert renewed["count-objects-checked"] == first_count + 1
        # an always-on box (here a storage node) keeps the cap and veil run renews it
        box = grid / "storage-05"
        code = main(["-d", str(box), "renew", "--keep", "--every", "1 second", renewal_cap])
        assert code == 0, capsys.readouterr().err
        capsys.readouterr()
        _stop(box)
        subprocess.run([*GRID, "start", str(grid), "--servers", "6", *shares], check=True)
        status = box / "private" / "renewals-held.json"
        deadline = time.monotonic() + 60
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        (counts,) = json.loads(status.read_text()).values()
        assert counts["count-objects-checked"] == first_count + 1
        assert "URI:VEIL-RENEWAL:" not in (box / "logs" / "veil.log").read_text()
        # each server's figures for the welcome page: what it holds
        from veil.adapters.node.server_status import storage_figures, welcome_json

        figures = storage_figures(grid / "storage-03")
        assert figures is not None and figures["shares-held"] > 0 and figures["bytes-held"] > 0
        assert figures["expiration-enabled"] is False
        assert welcome_json([], {}, storage=figures)["storage"] == figures
        veil("check", "URI:CHK:nonsense", code=1)
    finally:
        subprocess.run([*GRID, "stop", str(grid)], check=True, capture_output=True)
