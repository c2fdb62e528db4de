"""Which network reaches which server: the connection policy of a node.

Built once per command from ``tahoe.cfg`` and the environment:

    [connections] tcp   how ``pb://`` (TCP) addresses are reached: tcp, tor or
                        disabled. Default tcp, or tor when the node hides its
                        IP address (tcp is then refused, see tor_settings).
    [tor] enabled       whether ``pb+tor://`` (onion) addresses are reached
                        through Tor (default true).

Tor is looked for only when something needs it; a node that hides its IP
address looks at once and refuses to run without it. ``choose`` picks, for a
server's NURLs, the one to use and the provider that reaches it, preferring
onion addresses when the node is anonymous and TCP otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from veil.adapters.network import NetworkProvider, TcpProvider
from veil.adapters.nodedir import NodeDirectory
from veil.errors import ConfigError
from veil.formats.nurl import NURL

TOR_SCHEME = "pb+tor"


@dataclass
class Networks:
    tcp: NetworkProvider | None
    tor: NetworkProvider | None
    anonymous: bool
    tor_problem: str = ""  # why ``tor`` is None, when it is

    def provider_for(self, nurl: NURL) -> NetworkProvider | None:
        if nurl.scheme == "pb" and not nurl.host.endswith((".onion", ".i2p")):
            return self.tcp
        if nurl.scheme == TOR_SCHEME or nurl.host.endswith(".onion"):
            return self.tor
        return None

    def choose(self, nurls: Sequence[NURL]) -> tuple[NURL, NetworkProvider] | None:
        usable = [(n, p) for n in nurls if (p := self.provider_for(n)) is not None]
        if self.anonymous:
            usable.sort(key=lambda pair: pair[1].name != "tor" or pair[0].scheme != TOR_SCHEME)
        else:
            usable.sort(key=lambda pair: pair[1].name != "tcp")
        return usable[0] if usable else None

    def why_unreachable(self, nurls: Sequence[NURL]) -> str:
        kinds = sorted({n.scheme for n in nurls}) or ["none veil can read"]
        if TOR_SCHEME in kinds and self.tor is None:
            return f"it is reachable only as an onion service and {self.tor_problem}"
        return f"it offers {', '.join(kinds)} and [connections] tcp = disabled"


async def networks_for(
    node: NodeDirectory,
    *,
    env: Mapping[str, str] | None = None,
    need_tor: bool = False,
    tcp: NetworkProvider | None = None,
) -> Networks:
    """The providers for a node. ``need_tor``: find Tor now even if not anonymous."""
    from veil.adapters.tor import TorProvider, find_socks

    node.require_network_allowed()
    environ = os.environ if env is None else env
    tor_cfg = node.section("tor")
    anonymous = node.hides_ip
    tcp_mode = node.get("connections", "tcp", "tor" if anonymous else "tcp").strip().lower()
    if tcp_mode not in ("tcp", "tor", "disabled"):
        raise ConfigError(f"[connections] tcp = {tcp_mode}: veil knows tcp, tor and disabled")
    tor_enabled = node.get_bool("tor", "enabled", True)
    tor: NetworkProvider | None = None
    problem = "[tor] enabled = false"
    if tor_enabled and (anonymous or need_tor or tcp_mode == "tor"):
        try:
            tor = TorProvider(await find_socks(environ, tor_cfg))
        except ConfigError as exc:
            if anonymous or tcp_mode == "tor":
                raise ConfigError(
                    f"{exc} — this node only connects through Tor, so it will not start",
                    hint=exc.hint,
                ) from None
            problem = str(exc)
    direct: NetworkProvider | None = {
        "tcp": tcp or TcpProvider(),
        "tor": tor,
        "disabled": None,
    }[tcp_mode]
    return Networks(direct, tor, anonymous, problem)
