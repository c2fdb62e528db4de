"""Where to find Tor, and which settings would reveal the user's IP address.

Pure: the environment and ``tahoe.cfg`` come in as mappings. The order of
the search follows the Tor Project's application guidelines: the ``TOR_*``
variables a Tor-aware system (Tails, Whonix, Tor Browser's launcher) sets,
then ``[tor]`` settings, then a system tor (unix sockets first, then the
usual ports, then Tor Browser's). An explicit setting is used alone: if it
does not answer, veil says so rather than try elsewhere.

``privacy_problems`` lists every setting that would reveal the IP address
of a node asked to hide it; any one stops start-up (fail closed).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from veil.errors import ConfigError

SYSTEM_SOCKS = ("unix:/var/run/tor/socks", "tcp:127.0.0.1:9050", "tcp:127.0.0.1:9150")
SYSTEM_CONTROL = ("unix:/var/run/tor/control", "tcp:127.0.0.1:9051", "tcp:127.0.0.1:9151")
DEFAULT_ONION_PORT = 3457
TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True)
class Endpoint:
    """A TCP address or a unix socket path of a Tor port."""

    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def is_unix(self) -> bool:
        return bool(self.path)

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


def parse_endpoint(text: str, *, default_host: str = "127.0.0.1") -> Endpoint:
    """``unix:/path``, ``tcp:HOST:PORT``, ``tcp:host=H:port=P``, ``HOST:PORT`` or ``PORT``."""
    value = text.strip()
    if value.startswith("unix:"):
        path = value[5:].split(":", 1)[0]
        if not path.startswith("/"):
            raise ConfigError(f"{text!r}: a unix socket path must be absolute")
        return Endpoint(path=path)
    value = value.removeprefix("tcp:")
    bracketed = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", value)
    if bracketed:
        host, port_text = bracketed.group(1), bracketed.group(2)
    else:
        fields = dict(f.split("=", 1) for f in value.split(":") if "=" in f)
        plain = [f for f in value.split(":") if "=" not in f]
        host = fields.get("host") or (plain[0] if len(plain) == 2 else default_host)
        port_text = fields.get("port") or (plain[-1] if len(plain) in (1, 2) else "")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(
            f"{text!r} is not an endpoint (examples: tcp:127.0.0.1:9050, unix:/run/tor/socks)"
        ) from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"{text!r}: port out of range")
    return Endpoint(host=host, port=port)


@dataclass(frozen=True)
class Search:
    """Endpoints to try in order; ``explicit``: given by the user, no fallback."""

    endpoints: tuple[Endpoint, ...]
    source: str
    explicit: bool


def _from_env(env: Mapping[str, str], prefix: str, default_port: int) -> Search | None:
    ipc = env.get(f"TOR_{prefix}_IPC_PATH", "").strip()
    if ipc:
        return Search((Endpoint(path=ipc),), f"TOR_{prefix}_IPC_PATH", True)
    host, port = env.get(f"TOR_{prefix}_HOST", "").strip(), env.get(f"TOR_{prefix}_PORT", "")
    if host or port.strip():
        text = f"{host or '127.0.0.1'}:{port.strip() or default_port}"
        return Search((parse_endpoint(text),), f"TOR_{prefix}_HOST/PORT", True)
    return None


def socks_search(env: Mapping[str, str], tor: Mapping[str, str]) -> Search:
    found = _from_env(env, "SOCKS", 9050)
    if found:
        return found
    if tor.get("socks.port", "").strip():
        return Search((parse_endpoint(tor["socks.port"]),), "[tor] socks.port", True)
    return Search(tuple(map(parse_endpoint, SYSTEM_SOCKS)), "a system tor", False)


def control_search(env: Mapping[str, str], tor: Mapping[str, str]) -> Search:
    found = _from_env(env, "CONTROL", 9051)
    if found:
        return found
    if tor.get("control.port", "").strip():
        return Search((parse_endpoint(tor["control.port"]),), "[tor] control.port", True)
    return Search(tuple(map(parse_endpoint, SYSTEM_CONTROL)), "a system tor", False)


def _flag(values: Mapping[str, str], key: str, default: bool) -> bool:
    value = values.get(key, "").strip().lower()
    return default if not value else value in TRUE


def _lower(section: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v.strip() for k, v in section.items()}


def is_loopback(host: str) -> bool:
    host = _normal_host(host)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _web_interface(web_port: str) -> str | None:
    """The interface a Twisted-style ``web.port`` binds (None: every interface)."""
    for field in web_port.split(":"):
        if field.startswith("interface="):
            return field.split("=", 1)[1]
    return None


def privacy_problems(sections: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Every setting that would reveal the IP address of a node that hides it."""
    node = _lower(sections.get("node", {}))
    conns = _lower(sections.get("connections", {}))
    tor = _lower(sections.get("tor", {}))
    storage = _lower(sections.get("storage", {}))
    intro = _lower(sections.get("introducer", {}))
    problems = []
    if conns.get("tcp", "tor").lower() not in ("tor", "disabled"):
        problems.append(
            f"[connections] tcp = {conns['tcp']} would connect to servers directly; "
            "set it to tor (or remove it)"
        )
    from veil.formats.i2p_settings import i2p_settings

    over_i2p = i2p_settings(sections)
    if not _flag(tor, "enabled", True) and not over_i2p.required:
        problems.append(
            "[tor] enabled = false leaves no way to connect; set it to true "
            "(or use I2P: [i2p] enabled = true)"
        )
    for hint in revealing_hints(node.get("tub.location", "")):
        problems.append(
            f"[node] tub.location announces {hint!r}, which is not an onion (or I2P) location: "
            "it reveals this machine's address; announce only tor:NAME.onion:PORT locations"
        )
    onion = _flag(tor, "onion", False)
    relayed = bool(storage.get("relays", "").strip())  # reached through relays, over Tor
    if relayed and not _flag(storage, "relays.tor", True):
        problems.append(
            "[storage] relays.tor = false would tell every relay this node's IP address; "
            "remove it (tunnels to relays then go through Tor)"
        )
    for name, section, enabled in (
        ("storage", storage, _flag(storage, "enabled", True)),
        ("introducer", intro, _flag(intro, "enabled", False)),
    ):
        if not enabled:
            continue
        if not onion and not over_i2p.dest and not (relayed and name == "storage"):
            problems.append(
                f"this node runs a {name} server, which would be reached at its IP address; "
                "make it an onion service ([tor] onion = true; 'veil create-node --listen=tor "
                "--hide-ip' writes this) or an I2P destination ([i2p] dest = true; "
                "--listen=i2p) or disable it"
            )
        host = section.get("hostname", "")
        if host and not is_loopback(host):
            problems.append(
                f"[{name}] hostname = {host} would listen on a network interface; "
                "an onion service or I2P destination listens on 127.0.0.1 only (remove the setting)"
            )
    tub_port = node.get("tub.port", "")
    listens = tub_port.lower() not in ("", "disabled")
    if (
        listens
        and not tub_port.lower().startswith(("listen:tor", "listen:i2p"))
        and not is_loopback(_web_interface(tub_port) or "0.0.0.0")
    ):
        problems.append(
            f"[node] tub.port = {tub_port} listens on every interface; "
            "add :interface=127.0.0.1 (or set it to disabled)"
        )
    web = node.get("web.port", "")
    if web and web.lower() != "none" and not is_loopback(_web_interface(web) or "0.0.0.0"):
        problems.append(
            f"[node] web.port = {web} listens on every interface; "
            "add :interface=127.0.0.1 (for example tcp:3456:interface=127.0.0.1)"
        )
    return problems


def _normal_host(host: str) -> str:
    """Lower case, one trailing dot removed (as ``config_schema.normalize_host``)."""
    return host.strip().lower().removesuffix(".")


def anonymous_hint(hint: str) -> bool:
    """True only for ``tor:NAME.onion:PORT`` and ``i2p:NAME.i2p[:PORT]`` hints, in any case."""
    scheme, _, rest = hint.strip().partition(":")
    scheme = scheme.lower()
    if scheme == "i2p" and ":" not in rest:
        rest += ":0"  # i2p:NAME.i2p has no port
    host, sep, port = rest.rpartition(":")
    host = _normal_host(host)
    suffix = {"tor": ".onion", "i2p": ".i2p"}.get(scheme)
    if suffix is None or not sep or ":" in host or not port.isdigit():
        return False
    return host.endswith(suffix) and len(host) > len(suffix)


def revealing_hints(location: str) -> list[str]:
    """Every ``tub.location`` hint that is not an onion or I2P one (``disabled``: none)."""
    if location.strip().lower() in ("", "disabled"):
        return []
    hints = [h.strip() for h in location.split(",") if h.strip()]
    return [h for h in hints if not anonymous_hint(h)]


def onion_of_hint(hint: str) -> str | None:
    """The normalized onion name of a ``tor:`` hint, or None."""
    if not anonymous_hint(hint) or not hint.strip().lower().startswith("tor:"):
        return None
    return _normal_host(hint.strip()[4:].rpartition(":")[0])
