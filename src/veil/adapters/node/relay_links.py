"""A storage node's relays: ``[storage] relays`` read, tunnels kept, hints announced.

    [storage]
    relays = alice, carol          names of tickets in private/relays/NAME.ticket
    relays.tor = true              tunnels to the relays go through Tor

Each ticket (``veil.formats.relay_protocol.RelayTicket``, handed out by the
relay's operator, written by ``veil relay join``) holds the backend's secret,
so it lives in ``private/`` with mode 0600. A ticket file may instead say
``pagekite://HOST:PORT``: a Pagekite frontend, whose tunnel the operator's own
``pagekite`` backend keeps; the node only announces it. The node keeps a
``veil.adapters.net.relay_tunnel.RelayLink`` to every relay and announces one
NURL (and one fURL hint) per relay: its public address from the ticket. Its
direct address (``[storage] hostname``) is announced too unless it is a
loopback address: then only the relays reach the listener.

Fail-closed: a node that hides its IP address (``reveal-IP-address =
false``) tunnels only through Tor, and refuses ``relays.tor = false``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.adapters.http.tls import spki_hash_of_pem, tubid_text
from veil.adapters.net.connection_policy import Networks
from veil.adapters.net.relay_tunnel import RelayLink
from veil.adapters.node.files import present, read_text
from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError, VeilError
from veil.formats.nurl import NURL
from veil.formats.relay_protocol import ExternalRelay, RelayTicket, check_name, parse_relay_entry
from veil.formats.tor_settings import is_loopback

log = logging.getLogger(__name__)
TICKETS = "relays"  # the directory in private/
REGISTER_TIMEOUT = 30.0  # seconds start-up waits for the first tunnel to each relay


def relay_names(node: NodeDirectory) -> list[str]:
    text = node.get("storage", "relays", "").strip()
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    for name in names:
        try:
            check_name(name)
        except VeilError:
            raise ConfigError(
                f"{node.config_path}: [storage] relays names {name[:40]!r}, not a relay name",
                hint="relay names are what 'veil relay join NODEDIR NAME TICKET' was given",
            ) from None
    return names


def ticket_path_of(node: NodeDirectory, name: str) -> Path:
    return node.private / TICKETS / f"{name}.ticket"


def relay_tickets(node: NodeDirectory) -> dict[str, RelayTicket | ExternalRelay]:
    """{relay name: ticket} for ``[storage] relays``; ConfigError for a missing or bad one."""
    tickets: dict[str, RelayTicket | ExternalRelay] = {}
    for name in relay_names(node):
        path = ticket_path_of(node, name)
        if not present(path):
            raise ConfigError(
                f"[storage] relays names {name!r} but {path} does not exist",
                hint=f"veil relay join {node.path} {name} TICKET (the relay operator has it)",
            )
        try:
            tickets[name] = parse_relay_entry(read_text(path))
        except VeilError as exc:
            raise ConfigError(f"{path}: {exc}", hint=exc.hint) from None
    return tickets


def relays_through_tor(node: NodeDirectory) -> bool:
    if node.hides_ip:
        if not node.get_bool("storage", "relays.tor", True):
            raise ConfigError(
                f"{node.config_path}: [storage] relays.tor = false would tell every relay "
                "this node's IP address, and the node hides it (reveal-IP-address = false)",
                hint="remove relays.tor, or set it to true; the node will not start so",
            )
        return True
    return node.get_bool("storage", "relays.tor", False)


@dataclass
class NodeRelays:
    """The tunnels of one running storage node."""

    tickets: dict[str, RelayTicket | ExternalRelay]
    links: list[RelayLink] = field(default_factory=list)

    def describe(self) -> str:
        """For the log: the relays by name (their addresses are in the announcement)."""
        return f"{len(self.tickets)} relay(s): {', '.join(self.tickets)}"

    async def stop(self) -> None:
        for link in self.links:
            await link.stop()
        self.links.clear()


async def start_relays(
    node: NodeDirectory, listen: tuple[str, int], networks: Networks | None
) -> NodeRelays | None:
    """Open the tunnels of ``[storage] relays`` to the listener at ``listen``
    (None when the node has no relays). Start-up waits until every relay has
    accepted a tunnel or ``REGISTER_TIMEOUT`` passes (a relay that is down is
    rejoined later, with backoff)."""
    tickets = relay_tickets(node)
    if not tickets:
        return None
    socks = None
    if relays_through_tor(node):
        if networks is None:
            raise ConfigError("relays through Tor need Tor, and no network was set up")
        await networks.ensure_tor()
        socks = getattr(networks.tor, "socks", None)
        if socks is None:
            raise ConfigError(
                f"[storage] relays.tor: {networks.tor_problem}",
                hint="the tunnels to the relays go only through Tor; start tor",
            )
    host = "127.0.0.1" if listen[0] in ("0.0.0.0", "") else listen[0]
    relays = NodeRelays(tickets)
    for ticket in tickets.values():
        if isinstance(ticket, ExternalRelay):  # its own backend program keeps the tunnel
            continue
        link = RelayLink(ticket, (host, listen[1]), socks=socks)
        link.start()
        relays.links.append(link)
    for link in relays.links:
        try:
            await link.wait_registered(REGISTER_TIMEOUT)
            log.info("tunnels open to the %s", link.where)
        except TimeoutError:
            log.warning("the %s does not answer yet (%s); retrying", link.where, link.last_problem)
    return relays


def direct_address(relays: NodeRelays | None, host: str | None) -> str | None:
    """The host to announce directly: with relays, none if it is a loopback
    address (a server behind NAT listens there only for its tunnels)."""
    if relays is None or host is None or not is_loopback(host):
        return host
    return None


def with_relay_hints(node: NodeDirectory, ann: dict[str, Any], relays: NodeRelays | None) -> None:
    """Add one NURL and one fURL hint per relay to a veil node's announcement."""
    if relays is None:
        return
    cert = node.certificate_pem()
    spki, swissnum = spki_hash_of_pem(cert), node.swissnum()
    hints = []
    for ticket in relays.tickets.values():
        nurl = NURL("pb", spki, ticket.public_host, ticket.public_port, swissnum)
        ann["anonymous-storage-NURLs"].append(nurl.to_string())
        hints.append(f"tcp:{nurl.netloc}")
    furl = ann["anonymous-storage-FURL"]
    head, _, tail = furl.rpartition("/")
    at = head.index("@") + 1
    old = [h for h in head[at:].split(",") if h]
    ann["anonymous-storage-FURL"] = f"pb://{tubid_text(cert)}@{','.join(old + hints)}/{tail}"
