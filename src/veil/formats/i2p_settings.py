"""Tahoe's ``[i2p]`` settings, read the way veil uses them, and their fail-closed rules.

Pure: ``tahoe.cfg`` comes in as a mapping of sections.

    [i2p] enabled                 reach pb+i2p:// servers through I2P (default true;
                                  written true, a node that hides its IP address
                                  refuses to start without a SAM bridge)
    [i2p] sam.port                the router's SAM bridge (tcp:127.0.0.1:7656)
    [i2p] dest                    serve this node's storage/introducer as an I2P
                                  destination
    [i2p] dest.port               the port written in its NURL and fURL hint (3457)
    [i2p] dest.private_key_file   its key (private/i2p_dest.privkey; an introducer on
                                  the same node uses private/i2p_introducer_dest.privkey)

``launch``, ``i2p.executable`` and ``i2p.configdir`` load (Tahoe writes them)
but veil never starts a router: set to anything, veil warns and then needs a
running one. An anonymous node may use Tor, I2P, or both: ``anonymity_networks``
says which, and ``privacy_problems`` in ``veil.formats.tor_settings`` accepts
an I2P destination where it would ask for an onion service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_SAM = "tcp:127.0.0.1:7656"
DEFAULT_DEST_PORT = 3457
DEFAULT_KEY_FILE = "private/i2p_dest.privkey"
INTRODUCER_KEY_FILE = "private/i2p_introducer_dest.privkey"
I2P_SCHEME = "pb+i2p"
TRUE = ("true", "yes", "on", "1")


def _section(sections: Mapping[str, Mapping[str, str]], name: str) -> dict[str, str]:
    return {k.lower(): v.strip() for k, v in sections.get(name, {}).items()}


@dataclass(frozen=True)
class I2PSettings:
    enabled: bool
    explicitly_enabled: bool
    sam_port: str
    sam_explicit: bool
    dest: bool
    dest_port: int
    key_file: str

    @property
    def required(self) -> bool:
        """True when a node must find its SAM bridge at start (or refuse)."""
        return self.explicitly_enabled or self.dest


def i2p_settings(sections: Mapping[str, Mapping[str, str]]) -> I2PSettings:
    i2p = _section(sections, "i2p")
    enabled_text = i2p.get("enabled", "").lower()
    port_text = i2p.get("dest.port", "")
    return I2PSettings(
        enabled=enabled_text in TRUE or not enabled_text,
        explicitly_enabled=enabled_text in TRUE,
        sam_port=i2p.get("sam.port", "") or DEFAULT_SAM,
        sam_explicit=bool(i2p.get("sam.port", "")),
        dest=i2p.get("dest", "").lower() in TRUE,
        dest_port=int(port_text) if port_text.isdigit() else DEFAULT_DEST_PORT,
        key_file=i2p.get("dest.private_key_file", "") or DEFAULT_KEY_FILE,
    )


def anonymity_networks(sections: Mapping[str, Mapping[str, str]]) -> set[str]:
    """The networks an anonymous node connects through: tor unless ``[tor]
    enabled = false``; i2p when ``[i2p]`` is switched on explicitly."""
    tor = _section(sections, "tor").get("enabled", "true").lower()
    networks = set()
    if tor in TRUE or not tor:
        networks.add("tor")
    if i2p_settings(sections).required:
        networks.add("i2p")
    return networks


def i2p_hints(location: str) -> list[tuple[str, int]]:
    """(address, port) of every ``i2p:NAME.i2p[:PORT]`` hint of a ``tub.location``."""
    out = []
    for hint in location.split(","):
        kind, _, rest = hint.strip().partition(":")
        if kind.lower() != "i2p" or not rest:
            continue
        host, _, port = rest.partition(":")
        if host.lower().endswith(".i2p"):
            out.append((host.lower(), int(port) if port.isdigit() else DEFAULT_DEST_PORT))
    return out
