"""The keys veil reads from ``tahoe.cfg``, their types, defaults and meanings.

``validate`` checks a parsed configuration against ``SCHEMA`` and returns
every problem as one line naming the file, section, key and what is allowed.
Keys that Tahoe-LAFS writes but veil does not use yet are accepted (so a
Tahoe node directory loads) and marked as such. ``[node] anonymize`` is an
older synonym of ``reveal-IP-address = false``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Check = Callable[[str], str | None]  # returns a problem, or None when the value is fine

_BOOLS = {"true", "false", "yes", "no", "on", "off", "1", "0"}
_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*[kKmMgGtT]?[bB]?\s*$")


def _bool(v: str) -> str | None:
    return None if v.strip().lower() in _BOOLS else "must be true or false"


def _int(low: int, high: int) -> Check:
    def check(v: str) -> str | None:
        try:
            n = int(v)
        except ValueError:
            return "must be a whole number"
        return None if low <= n <= high else f"must be between {low} and {high}"

    return check


def _size(v: str) -> str | None:
    return None if _SIZE.match(v) else "must be a size such as 0, 500M or 10G"


def _text(v: str) -> str | None:
    return None


def _choice(*allowed: str) -> Check:
    def check(v: str) -> str | None:
        return None if v.strip().lower() in allowed else "must be one of " + ", ".join(allowed)

    return check


def _endpoint(v: str) -> str | None:
    from veil.errors import ConfigError
    from veil.formats.tor_settings import parse_endpoint

    try:
        parse_endpoint(v)
    except ConfigError:
        return "must be an endpoint such as tcp:127.0.0.1:9050 or unix:/run/tor/socks"
    return None


@dataclass(frozen=True)
class Key:
    check: Check
    default: str
    meaning: str
    used: bool = True


SCHEMA: Mapping[str, Mapping[str, Key]] = {
    "node": {
        "nickname": Key(_text, "(directory name)", "name shown to other nodes"),
        "reveal-IP-address": Key(
            _bool,
            "true",
            "false: connect only through Tor and refuse any setting that could reveal the "
            "IP address",
        ),
        "anonymize": Key(_bool, "false", "older synonym of reveal-IP-address = false"),
        "tub.port": Key(_text, "", "Tahoe's Foolscap listener (accepted, not used)", False),
        "tub.location": Key(
            _text, "", "announced locations; its tor: hint records the node's onion address"
        ),
        "web.port": Key(_text, "", "Tahoe's web gateway port (accepted, not used yet)", False),
        "web.static": Key(
            _text, "public_html", "Tahoe's static web files (accepted, not used)", False
        ),
        "log_gatherer.furl": Key(_text, "", "Tahoe log gatherer (accepted, not used)", False),
        "timeout.keepalive": Key(
            _text, "", "Tahoe connection keepalive (accepted, not used)", False
        ),
        "timeout.disconnect": Key(
            _text, "", "Tahoe disconnect timeout (accepted, not used)", False
        ),
        "tempdir": Key(_text, "", "Tahoe temporary directory (accepted, not used)", False),
    },
    "client": {
        "shares.needed": Key(_int(1, 256), "3", "k: shares needed to rebuild a file"),
        "shares.happy": Key(
            _int(1, 256), "7", "servers that must hold distinct shares for an upload to succeed"
        ),
        "shares.total": Key(_int(1, 256), "10", "N: shares made of each file"),
        "shares._max_immutable_segment_size_for_testing": Key(
            _int(1, 2**30), "1048576", "maximum segment size"
        ),
        "introducer.furl": Key(_text, "", "Tahoe introducer (accepted, not used yet)", False),
        "helper.furl": Key(_text, "", "Tahoe upload helper (accepted, not used)", False),
        "force_foolscap": Key(
            _bool, "false", "Tahoe's Foolscap switch (veil speaks HTTPS only)", False
        ),
        "peers.preferred": Key(_text, "", "servers to prefer (accepted, not used yet)", False),
    },
    "storage": {
        "enabled": Key(_bool, "true", "serve storage when 'veil run'"),
        "port": Key(_int(0, 65535), "0", "HTTPS port of the storage server (0: any free port)"),
        "hostname": Key(
            _text,
            "127.0.0.1",
            "address bound and announced in the NURL (absent: onion service only)",
        ),
        "reserved_space": Key(_size, "0", "free disk space to leave untouched (10G, 500M)"),
        "readonly": Key(_bool, "false", "accept no new shares; serve existing ones"),
        "force_foolscap": Key(
            _bool, "false", "Tahoe's Foolscap switch (accepted, not used)", False
        ),
        "expire.enabled": Key(_bool, "false", "lease expiry (accepted, not used yet)", False),
    },
    "introducer": {
        "enabled": Key(_bool, "false", "run an introducer in this node ('veil create-introducer')"),
        "port": Key(_int(0, 65535), "0", "HTTPS port of the introducer (0: any free port)"),
        "hostname": Key(_text, "127.0.0.1", "address bound and announced in the introducer NURL"),
    },
    "helper": {"enabled": Key(_bool, "false", "Tahoe upload helper (accepted, not used)", False)},
    "connections": {
        "tcp": Key(
            _choice("tcp", "tor", "disabled"),
            "tcp (tor when hiding the IP address)",
            "how pb:// (TCP) servers are reached: tcp, tor or disabled",
        )
    },
    "tor": {
        "enabled": Key(_bool, "true", "reach onion (pb+tor://) servers through Tor"),
        "socks.port": Key(
            _endpoint, "(found)", "Tor's SOCKS port: tcp:127.0.0.1:9050 or unix:/path"
        ),
        "control.port": Key(
            _endpoint, "(found)", "Tor's control port, needed only for onion services"
        ),
        "onion": Key(_bool, "false", "publish this node's servers as a Tor onion service"),
        "onion.external_port": Key(
            _int(1, 65535),
            "3457",
            "port on the onion address (introducer: the next one when the node also runs storage)",
        ),
        "onion.local_port": Key(
            _int(0, 65535), "0", "127.0.0.1 port the onion service forwards to (0: any)"
        ),
        "onion.private_key_file": Key(
            _text, "private/tor_onion.privkey", "the onion service's key (keep it secret)"
        ),
        "launch": Key(
            _bool, "false", "start a private tor if no system tor answers (TOR_SKIP_LAUNCH=1: no)"
        ),
        "tor.executable": Key(_text, "tor", "the tor program to launch"),
        "launch.torrc_extra": Key(
            _text, "", "file of extra torrc lines for the launched tor (bridges, for example)"
        ),
    },
    "i2p": {},
}


def validate(sections: Mapping[str, Mapping[str, str]], filename: str) -> list[str]:
    """Every problem in a parsed configuration, one line each (empty: all fine)."""
    problems = []
    for section, values in sections.items():
        schema = SCHEMA.get(section)
        known = None if schema is None else {k.lower(): v for k, v in schema.items()}
        if known is None:
            allowed = ", ".join(f"[{s}]" for s in SCHEMA)
            problems.append(f"{filename}: unknown section [{section}] (allowed: {allowed})")
            continue
        for key, value in values.items():
            spec = known.get(key.lower())
            if spec is None:
                if section == "i2p":
                    continue  # I2P keys are accepted as they are until veil speaks I2P
                close = ", ".join(sorted(schema or {})) or "none"
                problems.append(
                    f"{filename}: [{section}] {key} is not a known key (allowed: {close})"
                )
                continue
            problem = spec.check(value)
            if problem:
                problems.append(f"{filename}: [{section}] {key} = {value!r} {problem}")
    return problems


def hides_ip(sections: Mapping[str, Mapping[str, str]]) -> bool:
    """True when the configuration asks never to reveal the IP address."""
    node = {k.lower(): v.strip().lower() for k, v in sections.get("node", {}).items()}
    return node.get("reveal-ip-address") in ("false", "no", "off", "0") or node.get(
        "anonymize"
    ) in ("true", "yes", "on", "1")
