"""``veil grid start|stop|status DIR``: a local grid on loopback for demos and tests.

``start`` creates (or reuses) N storage nodes and one client node under DIR,
starts each storage node as its own ``veil run`` process, waits until every
one has announced itself, and writes the client's ``private/servers.yaml``.
``stop`` ends each process by the PID it recorded in ``veil.pid``, but only
after checking that the PID still is that node (``/proc/PID/cmdline`` is
``veil ... run NODE`` for this very directory): a PID left from an earlier boot
or crash may belong to any process now, and a stale file is removed with one
warning instead. Re-running ``start`` on the same DIR keeps every node's
identity and shares.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError, UsageError
from veil.formats.params import EncodingParameters

START_TIMEOUT = 120.0  # a loaded machine (a CI running suites side by side) starts nodes slowly
STOP_TIMEOUT = 10.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("grid", help="run a local grid of storage servers on loopback")
    gsub = p.add_subparsers(dest="grid_command", metavar="ACTION")
    gsub.required = True
    start = gsub.add_parser("start", help="start (creating if needed) a local grid")
    start.add_argument("directory")
    start.add_argument("--servers", type=int, default=10, help="number of storage nodes")
    start.add_argument("--shares-needed", type=int, default=3)
    start.add_argument("--shares-happy", type=int, default=7)
    start.add_argument("--shares-total", type=int, default=10)
    start.set_defaults(func=run_start)
    stop = gsub.add_parser("stop", help="stop every node of a local grid")
    stop.add_argument("directory")
    stop.set_defaults(func=run_stop)
    status = gsub.add_parser("status", help="show the nodes of a local grid")
    status.add_argument("directory")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)


def _storage_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("storage-*") if (p / "tahoe.cfg").exists())


def _pid_alive(pid: int) -> bool:
    try:  # reap it first if it is our own child that has exited
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_node_process(pid: int, node: Path) -> bool:
    """Whether process ``pid`` is ``veil run NODE`` for this node directory."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [os.fsdecode(a) for a in argv if a]
    if "run" not in words or not any("veil" in Path(w).name for w in words):
        return False
    here = node.resolve()
    for w in words[words.index("run") + 1 :]:
        try:
            if Path(w).resolve() == here:
                return True
        except (OSError, RuntimeError):
            continue
    return False


def _read_pid(node: Path, *, quiet: bool = False) -> int | None:
    """The PID of this node's running process; a stale ``veil.pid`` (no such
    process, or another program now has that PID) is removed with a warning."""
    pid_file = node / "veil.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if _pid_alive(pid) and is_node_process(pid, node):
        return pid
    if not quiet:
        sys.stderr.write(
            f"veil: warning: removed stale {node.name}/veil.pid (process {pid} is not this node)\n"
        )
    pid_file.unlink(missing_ok=True)
    return None


def start_node(node: Path) -> int:
    """Start ``veil run NODE`` in the background; return its PID."""
    (node / "logs").mkdir(exist_ok=True)
    (node / "private" / "announcement.yaml").unlink(missing_ok=True)
    log = open(node / "logs" / "veil.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "veil.frontends.cli.main", "run", str(node.resolve())],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    (node / "veil.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def _still_there(node: Path) -> bool:
    """Whether the process ``start_node`` recorded for ``node`` still runs (not
    gone, not a zombie). Not ``_read_pid``: under load a starting node was taken
    for a stranger, its pid file removed and the node left running unwatched."""
    try:
        pid = int((node / "veil.pid").read_text().strip())
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] != "Z"


def wait_announced(nodes: list[Path], timeout: float = START_TIMEOUT) -> dict[str, dict[str, Any]]:
    """Wait for every node's announcement; return {server id: ann}."""
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, Any]] = {}
    pending = list(nodes)
    while pending:
        for node in list(pending):
            ann_file = node / "private" / "announcement.yaml"
            if ann_file.exists():
                import yaml

                doc = yaml.safe_load(ann_file.read_text())
                found[doc["server_id"]] = doc["ann"]
                pending.remove(node)
            elif not _still_there(node):
                tail = (node / "logs" / "veil.log").read_text(errors="replace")[-400:]
                raise ConfigError(f"storage node {node.name} exited at start:\n{tail.strip()}")
        if pending and time.monotonic() > deadline:
            raise ConfigError(f"storage nodes did not start in {timeout:.0f}s: {pending[0]}")
        if pending:
            time.sleep(0.05)
    return found


def run_start(args: argparse.Namespace) -> int:
    root = Path(args.directory)
    if args.servers < 1 or args.servers > 100:
        raise UsageError("--servers must be between 1 and 100")
    params = EncodingParameters(args.shares_needed, args.shares_happy, args.shares_total)
    root.mkdir(parents=True, exist_ok=True)
    nodes = []
    for i in range(args.servers):
        node = root / f"storage-{i:02d}"
        if not (node / "tahoe.cfg").exists():
            NodeDirectory.create(node, nickname=f"storage-{i:02d}", storage=True)
        nodes.append(node)
    to_start = [n for n in nodes if _read_pid(n) is None]
    for node in to_start:
        start_node(node)
    try:
        announcements = wait_announced(nodes)
    except BaseException:
        _stop(to_start)
        raise
    client = root / "client"
    if not (client / "tahoe.cfg").exists():
        NodeDirectory.create(client, nickname="client", storage=False, params=params)
    NodeDirectory(client).write_servers(announcements)
    sys.stdout.write(
        f"grid running: {len(nodes)} storage servers in {root}\n"
        f"client node: {client}\n"
        f"try: veil -d {client} put FILE\n"
    )
    return 0


def _stop(nodes: list[Path]) -> int:
    pids = {}
    for node in nodes:
        pid = _read_pid(node)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            pids[node] = pid
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(_pid_alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for node, pid in pids.items():
        if _pid_alive(pid) and is_node_process(pid, node):
            os.kill(pid, signal.SIGKILL)
    for node in pids:
        (node / "veil.pid").unlink(missing_ok=True)
    return len(pids)


def run_stop(args: argparse.Namespace) -> int:
    root = Path(args.directory)
    stopped = _stop(_storage_dirs(root))
    sys.stdout.write(f"stopped {stopped} storage node(s)\n")
    return 0


def run_status(args: argparse.Namespace) -> int:
    root = Path(args.directory)
    rows = []
    for node in _storage_dirs(root):
        pid = _read_pid(node)
        rows.append({"node": node.name, "running": pid is not None, "pid": pid})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
    else:
        for r in rows:
            state = f"running (pid {r['pid']})" if r["running"] else "stopped"
            sys.stdout.write(f"{r['node']}: {state}\n")
    return 0
