"""The ``veil`` executable: a command goes to the running node, or runs here.

When ``veil run`` serves the node directory a command names (``-d``, else
``$VEIL_NODE_DIRECTORY`` or ``~/.veil``), the commands in ``SERVED`` are handed
to it over ``private/cli.sock``, as Tahoe's CLI hands its work to its node: the
node's connections (and Tor circuits, I2P sessions) are already open, so a
command costs its own work and not a start-up. This process passes its
standard streams, its argument list and its working directory, waits, and
exits with the node's exit status; Ctrl-C here cancels the command there.

Everything else, and every case the node declines (another command is
running, a different Tor or veil environment, a different umask, no node),
runs in this process exactly as before (``veil.frontends.cli.main``).
``VEIL_STANDALONE=1`` always runs here. Only the standard library is imported
before that choice, so a handed-over command starts in milliseconds.
"""

from __future__ import annotations

import array
import json
import os
import socket
import struct
import sys
from collections.abc import Sequence

SOCKET = "cli.sock"
SERVED = frozenset(
    {"backup", "restore", "snapshots", "forget", "ls", "mkdir", "rm", "mv", "ln", "cp"}
    | {"put", "get"}  # of regular files only (``command_server._plain_files``)
)
HEADER = struct.Struct("!I")  # length of the JSON request that follows
MAX_REQUEST = 1 << 20
EXIT_INTERRUPTED = 130


def env_that_matters(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The variables that change what a command does or where its bytes go:
    the running node serves a command only when these are the same as its own."""
    keep = ("TOR_", "VEIL_", "I2P")
    return {
        k: v
        for k, v in environ.items()
        if k.startswith(keep) and k not in ("VEIL_NODE_DIRECTORY", "VEIL_STANDALONE")
    }


def command_and_node(
    argv: Sequence[str], environ: dict[str, str] | os._Environ[str]
) -> tuple[str, str]:
    """(command, node directory) as ``main``'s parser would read them; the
    command is empty when the global options are anything but ``-d``."""
    node = environ.get("VEIL_NODE_DIRECTORY", os.path.expanduser("~/.veil"))
    args = list(argv)
    while args:
        first = args.pop(0)
        if first in ("-d", "--node-directory"):
            if not args:
                return "", node
            node = args.pop(0)
        elif first.startswith("--node-directory="):
            node = first.split("=", 1)[1]
        elif first.startswith("-d") and len(first) > 2:
            node = first[2:]
        elif first.startswith("-"):
            return "", node  # --version, --help, a typo: main answers those
        else:
            return first, node
    return "", node


def socket_path(node: str) -> str:
    return os.path.join(node, "private", SOCKET)


def connect(path: str) -> socket.socket:
    """Connect to the node's socket; a path longer than a socket address may be
    is reached through ``/proc/self/fd`` of its directory."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(os.fsencode(path)) < 100:
            sock.connect(path)
            return sock
        fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
        try:
            sock.connect(f"/proc/self/fd/{fd}/{os.path.basename(path)}")
        finally:
            os.close(fd)
    except BaseException:
        sock.close()
        raise
    return sock


def _streams() -> list[int] | None:
    fds = [0, 1, 2]
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError:
            return None  # a closed standard stream: nothing to pass
    return fds


class _Lines:
    """The node's answers, one JSON object per line."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def next(self) -> dict[str, object]:
        while b"\n" not in self.data:
            chunk = self.sock.recv(4096)
            if not chunk or len(self.data) > MAX_REQUEST:
                return {}
            self.data += chunk
        line, self.data = self.data.split(b"\n", 1)
        answer = json.loads(line)
        return answer if isinstance(answer, dict) else {}


def hand_over(argv: Sequence[str]) -> int | None:
    """The exit status of the command as the running node ran it, or None when
    it is to run in this process (the node declined it before starting)."""
    if os.environ.get("VEIL_STANDALONE", "") == "1":
        return None
    command, node = command_and_node(argv, os.environ)
    path = socket_path(node)
    if command not in SERVED or not os.path.exists(path):
        return None
    fds = _streams()
    if fds is None:
        return None
    request = {
        "argv": list(argv),
        "cwd": os.getcwd(),
        "env": env_that_matters(os.environ),
        "umask": current_umask(),
    }
    body = json.dumps(request).encode()
    try:
        sock = connect(path)
    except OSError:
        return None  # a socket left by a node that is gone
    with sock:
        lines, accepted = _Lines(sock), False
        try:
            sock.sendmsg(
                [HEADER.pack(len(body)) + body],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))],
            )
            if lines.next().get("accepted") is not True:
                return None  # declined: nothing was done there
            accepted = True
            code = lines.next().get("exit")
        except KeyboardInterrupt:
            sys.stderr.write("veil: interrupted\n")
            return EXIT_INTERRUPTED  # the closed socket cancels the command there
        except (OSError, ValueError):
            if not accepted:
                return None
            code = None
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    sys.stderr.write("veil: error: the running node stopped before the command finished\n")
    return 1


def current_umask() -> int:
    """The umask, read without changing it for longer than the call."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def main() -> int:
    code = hand_over(sys.argv[1:])
    if code is not None:
        return code
    from veil.frontends.cli.main import main as run_here

    return run_here()


__all__ = ["SERVED", "SOCKET", "command_and_node", "env_that_matters", "hand_over", "main"]


if __name__ == "__main__":
    sys.exit(main())
