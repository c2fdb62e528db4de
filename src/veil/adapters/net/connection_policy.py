"""Which network reaches which server: the connection policy of a node.

Built once per command (or per running node) from ``tahoe.cfg`` and the
environment:

    [connections] tcp   how ``pb://`` (TCP) addresses are reached: tcp, tor or
                        disabled. Default tcp, or tor when the node hides its
                        IP address (tcp is then refused, see tor_settings).
    [tor] enabled       whether ``pb+tor://`` (onion) addresses are reached
                        through Tor (default true).

    [i2p] enabled       whether ``pb+i2p://`` (I2P) addresses are reached through
                        the router's SAM bridge (``veil.adapters.net.i2p``); a
                        node that wrote ``enabled = true`` (or serves an I2P
                        destination) finds SAM at once and refuses to run
                        without it, as it does for Tor when hiding its IP.

Tor is looked for only when something needs it (``ensure_tor``); a node that
hides its IP address looks at once and refuses to run without it. The search
is ``TOR_*`` variables, ``[tor]`` settings, a system tor, and last a private
tor launched for this process when ``[tor] launch = true`` (stopped by
``close``). ``usable`` orders a server's NURLs with the providers that reach
them (onion first when anonymous, TCP first otherwise); a client dials them
in that order. ``choose`` is the first of them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from veil.adapters.net.tcp import NetworkProvider, TcpProvider
from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError
from veil.formats.i2p_settings import I2P_SCHEME, i2p_settings
from veil.formats.nurl import NURL, is_anonymous_host, is_onion_host
from veil.formats.tor_settings import Endpoint, control_search, socks_search

if TYPE_CHECKING:
    from veil.adapters.net.tor_launch import LaunchedTor

TOR_SCHEME = "pb+tor"


@dataclass
class Networks:
    tcp: NetworkProvider | None
    tor: NetworkProvider | None
    anonymous: bool
    tor_problem: str = "Tor is not configured"
    node: NodeDirectory | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    tcp_mode: str = "tcp"
    launched: LaunchedTor | None = None
    i2p: NetworkProvider | None = None
    i2p_problem: str = "I2P is not configured"

    def provider_for(self, nurl: NURL) -> NetworkProvider | None:
        if is_i2p(nurl):
            return self.i2p
        # nurl.host is normalized (lower case, no trailing dot) when parsed,
        # and checked again here so no spelling of an onion name goes to TCP
        if nurl.scheme == "pb" and not is_anonymous_host(nurl.host):
            return self.tcp
        if nurl.scheme == TOR_SCHEME or is_onion_host(nurl.host):
            return self.tor
        return None

    def usable(self, nurls: Sequence[NURL]) -> list[tuple[NURL, NetworkProvider]]:
        """Every NURL this node may dial, with its provider, best first: onion
        first when anonymous, TCP first otherwise, else in announced order."""
        usable = [(n, p) for n in nurls if (p := self.provider_for(n)) is not None]
        if self.anonymous:
            usable.sort(key=_anonymous_order)
        else:
            usable.sort(key=lambda pair: pair[1].name != "tcp")
        return usable

    def choose(self, nurls: Sequence[NURL]) -> tuple[NURL, NetworkProvider] | None:
        usable = self.usable(nurls)
        return usable[0] if usable else None

    def why_unreachable(self, nurls: Sequence[NURL]) -> str:
        kinds = sorted({n.scheme for n in nurls}) or ["none veil can read"]
        onion = any(n.scheme == TOR_SCHEME or is_onion_host(n.host) for n in nurls)
        if onion and self.tor is None:
            return f"it is reachable only as an onion service and {self.tor_problem}"
        if any(is_i2p(n) for n in nurls) and self.i2p is None:
            return f"it is reachable only through I2P and {self.i2p_problem}"
        return f"it offers {', '.join(kinds)} and [connections] tcp = disabled"

    async def ensure_tor(self) -> None:
        """Find (or launch) Tor now; a node that must use Tor fails without it."""
        if self.tor is not None or self.node is None:
            return
        if not self.node.get_bool("tor", "enabled", True):
            self.tor_problem = "[tor] enabled = false"
            return
        must = self.anonymous or self.tcp_mode == "tor"
        try:
            from veil.adapters.net.tor import TorProvider

            self.tor = TorProvider(await self._find_socks())
        except ConfigError as exc:
            if must:
                raise ConfigError(
                    f"{exc} — this node only connects through Tor, so it will not start",
                    hint=exc.hint,
                ) from None
            self.tor_problem = str(exc)
            return
        if self.tcp_mode == "tor":
            self.tcp = self.tor

    async def _find_socks(self) -> Endpoint:
        from veil.adapters.net.tor import find_socks

        assert self.node is not None
        tor_cfg = self.node.section("tor")
        search = socks_search(self.env, tor_cfg)
        launch = self.node.get_bool("tor", "launch", False)
        if search.explicit or not launch or self.env.get("TOR_SKIP_LAUNCH", "") == "1":
            return await find_socks(self.env, tor_cfg)
        try:
            return await find_socks(self.env, tor_cfg)  # a system tor comes first
        except ConfigError:
            pass
        from veil.adapters.net.tor_launch import launch as launch_tor

        self.launched = await launch_tor(
            self.node.private,
            tor_cfg.get("tor.executable", "tor").strip() or "tor",
            tor_cfg.get("launch.torrc_extra", "").strip() or None,
        )
        return self.launched.socks

    async def control_port(self) -> tuple[Endpoint, str | None]:
        """Tor's control port for onion services, and the cookie file to use."""
        from veil.adapters.net.tor import find_control

        assert self.node is not None
        cookie = self.env.get("TOR_CONTROL_COOKIE_AUTH_FILE") or None
        if self.launched is not None and not control_search(self.env, {}).explicit:
            return self.launched.control, cookie or self.launched.cookie_file
        return await find_control(self.env, self.node.section("tor")), cookie

    async def ensure_i2p(self) -> None:
        """Find the SAM bridge now; a node that must use I2P fails without it."""
        if self.i2p is not None or self.node is None:
            return
        settings = i2p_settings({"i2p": self.node.section("i2p")})
        if not settings.enabled:
            self.i2p_problem = "[i2p] enabled = false"
            return
        from veil.adapters.net.i2p import I2PProvider, find_sam
        from veil.formats.tor_settings import parse_endpoint

        try:
            endpoint = await find_sam(
                parse_endpoint(settings.sam_port), explicit=settings.sam_explicit
            )
        except ConfigError as exc:
            if settings.required:
                raise ConfigError(
                    f"{exc} — this node is set to use I2P, so it will not start", hint=exc.hint
                ) from None
            self.i2p_problem = str(exc)
            return
        self.i2p = I2PProvider(endpoint)

    async def prepare_i2p(self, server_ids: Sequence[str]) -> None:
        """Make the SAM sessions of these I2P servers now, together: each builds
        its tunnels (20 s on i2pd 2.45), which no request's timeout should pay.
        A failure is left for the server's first request to report."""
        session = getattr(self.i2p, "session", None)
        if session is not None and server_ids:
            await asyncio.gather(*(session(sid) for sid in server_ids), return_exceptions=True)

    async def close(self) -> None:
        if isinstance(self.i2p, _Closable):
            await self.i2p.close()
        if self.launched is not None:
            await self.launched.stop()
            self.launched = None


def is_i2p(nurl: NURL) -> bool:
    """``pb+i2p://`` NURLs and any ``.i2p`` name: never given to TCP or Tor."""
    return nurl.scheme == I2P_SCHEME or (
        is_anonymous_host(nurl.host) and not is_onion_host(nurl.host)
    )


def _anonymous_order(pair: tuple[NURL, NetworkProvider]) -> int:
    """Onion over Tor first, then I2P, then the rest (TCP through Tor)."""
    nurl, provider = pair
    if provider.name == "tor" and nurl.scheme == TOR_SCHEME:
        return 0
    return 1 if provider.name == "i2p" else 2


@runtime_checkable
class _Closable(Protocol):
    async def close(self) -> None: ...


async def networks_for(
    node: NodeDirectory,
    *,
    env: Mapping[str, str] | None = None,
    need_tor: bool = False,
    tcp: NetworkProvider | None = None,
) -> Networks:
    """The providers for a node. ``need_tor``: find Tor now even if not anonymous."""
    node.require_network_allowed()
    anonymous = node.hides_ip
    tcp_mode = node.get("connections", "tcp", "tor" if anonymous else "tcp").strip().lower()
    if tcp_mode not in ("tcp", "tor", "disabled"):
        raise ConfigError(f"[connections] tcp = {tcp_mode}: veil knows tcp, tor and disabled")
    networks = Networks(
        tcp or TcpProvider() if tcp_mode == "tcp" else None,
        None,
        anonymous,
        node=node,
        env=dict(os.environ if env is None else env),
        tcp_mode=tcp_mode,
    )
    if anonymous or need_tor or tcp_mode == "tor":
        await networks.ensure_tor()
    await _ensure_i2p_if_needed(networks, node)
    return networks


async def _ensure_i2p_if_needed(networks: Networks, node: NodeDirectory) -> None:
    """I2P at once for a node set to use it, or one with an I2P introducer."""
    intro_i2p = any(I2P_SCHEME + ":" in text for text in node.introducers().values())
    if i2p_settings({"i2p": node.section("i2p")}).required or intro_i2p:
        await networks.ensure_i2p()
