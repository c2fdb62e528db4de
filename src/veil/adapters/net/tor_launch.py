"""A private tor, launched for a node that asks for one (``[tor] launch = true``).

Used only when no Tor is given by the ``TOR_*`` variables or ``[tor]
socks.port``/``control.port``, and never when ``TOR_SKIP_LAUNCH=1`` (a system
that manages Tor itself says so). The tor runs with its state in
``private/tor-statedir`` (so later starts bootstrap faster), SOCKS and control
on unix sockets in ``private/``, cookie authentication, and
``__OwningControllerProcess`` set to veil's PID: it exits when veil does.
``[tor] launch.torrc_extra`` names a file of extra torrc lines (bridges, for
example). veil waits until tor reports "Bootstrapped 100%".
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from veil.errors import ConfigError
from veil.formats.tor_settings import Endpoint

BOOTSTRAP_TIMEOUT = 300.0
UNIX_PATH_MAX = 107


@dataclass
class LaunchedTor:
    process: asyncio.subprocess.Process
    socks: Endpoint
    control: Endpoint
    cookie_file: str

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def _socket_path(private: Path, name: str) -> str:
    path = str(private / name)
    if len(path.encode()) > UNIX_PATH_MAX:
        raise ConfigError(
            f"the node directory path is too long for tor's unix sockets ({path})",
            hint="move the node to a shorter path, or run a system tor instead of launch = true",
        )
    return path


def torrc(private: Path, owner_pid: int, extra: str) -> str:
    state = private / "tor-statedir"
    socks = _socket_path(private, "tor.socks")
    control = _socket_path(private, "tor.control")
    lines = [
        f"DataDirectory {state}",
        f"SocksPort unix:{socks} IsolateSOCKSAuth",
        f"ControlPort unix:{control}",
        "CookieAuthentication 1",
        f"CookieAuthFile {state / 'control_auth_cookie'}",
        f"__OwningControllerProcess {owner_pid}",
        f"Log notice file {state / 'notice.log'}",
        "RunAsDaemon 0",
        "AvoidDiskWrites 1",
    ]
    return "\n".join(lines) + "\n" + extra + "\n"


async def launch(private: Path, executable: str, extra_torrc: str | None) -> LaunchedTor:
    private = private.resolve()  # tor wants absolute paths
    binary = shutil.which(executable)
    if binary is None:
        raise ConfigError(
            f"[tor] launch = true, but the tor program {executable!r} is not installed",
            hint="install tor (apt install tor) or set [tor] tor.executable",
        )
    state = private / "tor-statedir"
    state.mkdir(mode=0o700, exist_ok=True)
    extra = ""
    if extra_torrc:
        try:
            extra = Path(extra_torrc).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read [tor] launch.torrc_extra: {exc.strerror}") from None
    config = private / "torrc"
    config.write_text(torrc(private, os.getpid(), extra))
    log = state / "notice.log"
    log.unlink(missing_ok=True)
    for name in ("tor.socks", "tor.control"):
        (private / name).unlink(missing_ok=True)
    with open(state / "tor-output.log", "wb") as output:
        process = await asyncio.create_subprocess_exec(
            binary,
            "-f",
            str(config),
            "--defaults-torrc",
            os.devnull,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    launched = LaunchedTor(
        process,
        Endpoint(path=str(private / "tor.socks")),
        Endpoint(path=str(private / "tor.control")),
        str(state / "control_auth_cookie"),
    )
    deadline = time.monotonic() + BOOTSTRAP_TIMEOUT
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Bootstrapped 100%" in text:
            return launched
        if process.returncode is not None or time.monotonic() > deadline:
            await launched.stop()
            output_text = (state / "tor-output.log").read_text(errors="replace")
            lines = (text + output_text).splitlines()
            problems = [ln.split("] ", 1)[-1] for ln in lines if "[warn]" in ln or "[err]" in ln]
            last = "; ".join(problems[-2:]) or "it stopped without saying why"
            raise ConfigError(
                f"the tor launched by veil did not connect to the Tor network: {last[-300:]}",
                hint=f"see {log}",
            )
        await asyncio.sleep(0.25)
