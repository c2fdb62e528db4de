"""The running node's end of ``private/cli.sock``: CLI commands run in the node.

``veil run`` serves, beside the node, the commands that ``launcher`` hands
over: each runs on the node's event loop with one client session that stays
open (``GatewaySession``: connections, circuits and I2P sessions made once,
servers heard later added), writing to the caller's own standard streams,
which come over the socket (``SCM_RIGHTS``). One command at a time; the node
declines, before doing anything, a caller of another user (``SO_PEERCRED``),
one whose Tor/veil environment or umask differs from the node's, a node
directory that is not this one, a command line it cannot parse, or any
command while one is running; the caller then runs the command itself. A
caller that goes away (Ctrl-C) cancels its command.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

from veil.frontends.cli.launcher import (
    HEADER,
    MAX_REQUEST,
    SERVED,
    SOCKET,
    current_umask,
    env_that_matters,
)
from veil.frontends.runtime import LoopCommand

log = logging.getLogger(__name__)
REQUEST_TIMEOUT = 10.0
PEERCRED = struct.Struct("3i")  # pid, uid, gid
# what decides how and to whom the node connects: a change makes the caller run
# the command itself, with the configuration as it now is
CONFIG_FILES = ("tahoe.cfg", "private/servers.yaml", "private/introducers.yaml")
LOCAL_PATHS = {
    "backup": ("local", "exclude_from"),
    "restore": ("target",),
    "put": ("file",),
    "get": ("file",),
}


class Declined(Exception):
    """The caller runs the command itself; nothing was done here."""


class CommandServer:
    def __init__(self, node_dir: Path) -> None:
        self.node_dir = node_dir.resolve()
        self.path = self.node_dir / "private" / SOCKET
        self.env = env_that_matters(os.environ)
        self.umask = current_umask()
        self.config = self._config_stamp()
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._busy = asyncio.Lock()
        self._session: Any = None  # GatewaySession, opened at the first command

    def _config_stamp(self) -> list[tuple[str, int, int]]:
        stamp = []
        for name in CONFIG_FILES:
            try:
                st = (self.node_dir / name).stat()
            except FileNotFoundError:
                continue
            stamp.append((name, st.st_mtime_ns, st.st_size))
        return stamp

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a node that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            fd = os.open(self.path.parent, os.O_PATH | os.O_DIRECTORY)
            try:  # a short name for a long path (a socket address holds ~107 bytes)
                sock.bind(f"/proc/self/fd/{fd}/{SOCKET}")
            finally:
                os.close(fd)
            os.chmod(self.path, 0o600)
            sock.listen(16)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._accepting = asyncio.ensure_future(self._accept())

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        if self._session is not None:
            await self._session.close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            conn, _ = await loop.sock_accept(self._sock)
            conn.setblocking(False)
            task = asyncio.ensure_future(self._serve(conn))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        fds: list[int] = []
        try:
            with conn:
                try:
                    request, fds = await asyncio.wait_for(_request(conn), REQUEST_TIMEOUT)
                    args = self._admit(conn, request, fds)
                except (Declined, TimeoutError, OSError, ValueError) as exc:
                    log.debug("command declined: %s", exc)
                    with contextlib.suppress(OSError):
                        await loop.sock_sendall(conn, b'{"fallback": true}\n')
                    return
                async with self._busy:
                    owned, fds = fds, []  # from here closed with the streams
                    await loop.sock_sendall(conn, b'{"accepted": true}\n')
                    log.info("running %s for pid %d", args.command, _caller(conn)[0])
                    code = await self._run(conn, args, owned)
                with contextlib.suppress(OSError):
                    await loop.sock_sendall(conn, json.dumps({"exit": code}).encode() + b"\n")
        except Exception:  # the caller then says the node stopped; the node goes on
            log.exception("serving a command failed")
        finally:
            for fd in fds:
                os.close(fd)

    def _admit(
        self, conn: socket.socket, request: dict[str, Any], fds: list[int]
    ) -> argparse.Namespace:
        _, uid = _caller(conn)
        if uid != os.getuid():
            raise Declined(f"a caller of uid {uid}")
        if self._busy.locked():
            raise Declined("another command is running")
        if len(fds) != 3:
            raise Declined("the standard streams did not come")
        if request.get("env") != self.env or request.get("umask") != self.umask:
            raise Declined("another environment or umask")
        if self._config_stamp() != self.config:  # e.g. Tor required since: read it anew
            raise Declined("the node's configuration changed since it started")
        argv, cwd = request.get("argv"), request.get("cwd")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise Declined("no argument list")
        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            raise Declined("no working directory")
        args = _parse(argv)
        if args.command not in SERVED or not isinstance(args.func, LoopCommand):
            raise Declined(f"{args.command} is not served")
        node = Path(cwd, args.node_directory)
        if not node.exists() or not os.path.samefile(node, self.node_dir):
            raise Declined("another node directory")
        args.node_directory = str(self.node_dir)
        _absolute_paths(args, cwd)
        _plain_files(args)
        return args

    async def _run(self, conn: socket.socket, args: argparse.Namespace, fds: list[int]) -> int:
        from veil.adapters.node.client_session import warm_client
        from veil.adapters.web.wapi_session import GatewaySession
        from veil.frontends.cli.main import render_failure

        if self._session is None:
            self._session = GatewaySession(self.node_dir)
        command: LoopCommand = args.func
        with _streams(fds) as streams:

            async def guarded() -> int:
                try:
                    with warm_client(await self._session.client()):
                        return await command.in_loop(args)
                except Exception as exc:  # rendered as the CLI renders it
                    code = render_failure(exc)
                    if code is None:
                        traceback.print_exc(file=streams[2])
                        log.exception("command %s failed", args.command)
                        return 1
                    return code

            task = asyncio.ensure_future(guarded())
            gone = asyncio.ensure_future(asyncio.get_running_loop().sock_recv(conn, 1))
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():  # the caller went away: Ctrl-C there
                log.info("%s cancelled: its caller went away", args.command)
                task.cancel()
            gone.cancel()
            try:
                return await task
            except asyncio.CancelledError:
                if not gone.cancelled() and gone.done():
                    return 130
                raise


def _caller(conn: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end, as the kernel says."""
    pid, uid, _ = PEERCRED.unpack(
        conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size)
    )
    return pid, uid


_parsers: list[argparse.ArgumentParser] = []


def _parse(argv: list[str]) -> argparse.Namespace:
    """``main``'s parser, built once (it knows every command: ~20 ms a build)."""
    from veil.frontends.cli.main import build_parser

    if not _parsers:
        _parsers.append(build_parser())
        _parsers[0].exit_on_error = False
    parser = _parsers[0]
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            return parser.parse_args(argv)
    except (SystemExit, argparse.ArgumentError) as exc:
        raise Declined(f"unparsed command line ({exc})") from None


def _absolute_paths(args: argparse.Namespace, cwd: str) -> None:
    """Local paths the command names, as the caller meant them."""
    for name in LOCAL_PATHS.get(args.command, ()):
        value = getattr(args, name)
        if isinstance(value, list):
            setattr(args, name, [os.path.join(cwd, v) for v in value])
        elif isinstance(value, str) and value != "-":  # "-": a standard stream
            setattr(args, name, os.path.join(cwd, value))
    if args.command == "cp":
        args.sources = [_local(a, cwd) for a in args.sources]
        args.target = _local(args.target, cwd)


def _plain_files(args: argparse.Namespace) -> None:
    """``put`` and ``get`` run here only on regular files: a read of a pipe, a
    terminal or a FIFO (or the open of a FIFO that waits for its other end)
    would hold the node's event loop, so those run in the caller."""
    if args.command not in ("put", "get"):
        return
    name = args.file
    if name == "-":
        raise Declined(f"{args.command} on a standard stream")
    try:
        st = os.stat(name)
    except FileNotFoundError:
        if args.command == "get":
            return  # a new file
        raise Declined("no such file to put") from None  # the caller says so
    except OSError as exc:
        raise Declined(f"{args.command}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Declined(f"{args.command} of a file that is not a regular file")


def _local(arg: str, cwd: str) -> str:
    """``grid_paths.parse``'s rule: no ``ALIAS:`` prefix and no cap is local."""
    alias, sep, _ = arg.partition(":")
    grid = arg.startswith("URI:") or (sep and "/" not in alias)
    return arg if grid else os.path.join(cwd, arg)


@contextlib.contextmanager
def _streams(fds: list[int]) -> Any:
    """The caller's stdin, stdout and stderr as this process's, for one command."""
    opened: list[TextIO] = []
    saved = (sys.stdin, sys.stdout, sys.stderr)
    try:
        for n, fd in enumerate(fds):
            lines = n == 2 or (n == 1 and os.isatty(fd))  # as Python's own streams
            stream = open(  # noqa: SIM115 - closed below
                fd, "r" if n == 0 else "w", buffering=1 if lines else -1, errors="replace"
            )
            opened.append(stream)
        sys.stdin, sys.stdout, sys.stderr = opened
        yield opened
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        for each in opened:
            with contextlib.suppress(OSError, ValueError):
                each.close()
        for fd in fds[len(opened) :]:
            os.close(fd)


async def _request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The caller's one request: a length, a JSON object, and three descriptors."""
    loop = asyncio.get_running_loop()
    fds: list[int] = []
    data = b""
    try:
        while True:
            try:
                data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(3 * 4))
                break
            except (BlockingIOError, InterruptedError):
                await _readable(loop, conn.fileno())
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
                fds += list(got)
        if len(data) < HEADER.size:
            raise ValueError("a short request")
        (size,) = HEADER.unpack_from(data)
        if size > MAX_REQUEST:
            raise ValueError("an oversized request")
        body = data[HEADER.size :]
        while len(body) < size:
            chunk = await loop.sock_recv(conn, size - len(body))
            if not chunk:
                raise ValueError("a truncated request")
            body += chunk
        request = json.loads(body)
        if not isinstance(request, dict):
            raise ValueError("a request that is not an object")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return request, fds


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


__all__ = ["CommandServer"]
