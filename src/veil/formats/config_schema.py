"""The keys of ``tahoe.cfg``: every one Tahoe-LAFS 1.20 accepts, plus veil's own.

``validate`` checks a parsed configuration against ``SCHEMA`` (and the
cross-key rules of ``cross_problems``) and returns every problem as one line
naming the file, section, key and what is allowed. Every key and section
Tahoe 1.20 accepts loads (its ``allmydata.client._client_config`` and
``allmydata.node._common_valid_config``); a key veil does not act on is
marked ``used=False`` and ``ignored`` names each one that is set to
something other than "off", so the caller can warn once. ``[node]
anonymize`` is an older synonym of ``reveal-IP-address = false``.

``markdown_table`` renders the README's configuration table from ``SCHEMA``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Check = Callable[[str], str | None]  # returns a problem, or None when the value is fine

_BOOLS = {"true", "false", "yes", "no", "on", "off", "1", "0"}
_OFF = {"", "false", "no", "off", "0", "disabled", "none"}
_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*[kKmMgGtT]?[iI]?[bB]?\s*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


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


def normalize_host(host: str) -> str:
    """A host name as compared everywhere: lower case, one trailing dot removed."""
    return host.strip().lower().removesuffix(".")


def is_host(text: str) -> bool:
    """True for an IPv4/IPv6 address (brackets allowed) or a DNS name."""
    host = normalize_host(text)
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
        return True
    except ValueError:
        pass
    return len(host) <= 253 and all(_LABEL.match(label) for label in host.split("."))


def _hostname(v: str) -> str | None:
    return None if is_host(v) else "must be a host name or an IP address (such as 127.0.0.1)"


def _endpoint(v: str) -> str | None:
    from veil.errors import ConfigError
    from veil.formats.tor_settings import parse_endpoint

    try:
        parse_endpoint(v)
    except ConfigError:
        return "must be an endpoint such as tcp:127.0.0.1:9050 or unix:/run/tor/socks"
    return None


def _http_url(v: str) -> str | None:
    scheme, sep, rest = v.strip().partition("://")
    host = rest.split("/", 1)[0]
    ok = v.strip() == "" or (sep and scheme.lower() in ("http", "https") and host)
    return None if ok else "must be a URL such as https://s3.example.net or http://127.0.0.1:8333"


@dataclass(frozen=True)
class Key:
    check: Check
    default: str
    meaning: str
    used: bool = True
    tahoe_use: str = ""  # for a key veil ignores: what Tahoe does with it


def _tahoe(use: str, check: Check = _text, default: str = "") -> Key:
    """A key Tahoe accepts and veil ignores (a warning says so when it is set)."""
    return Key(check, default, f"Tahoe: {use} (ignored by veil)", False, use)


def _tahoe_flag(use: str) -> Key:
    return _tahoe(use, _bool, "false")


_DURATION = re.compile(r"^\s*\d+\s*(day|month|mo|year|second|sec|minute|min|hour)s?\s*$", re.I)
_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def _duration(v: str) -> str | None:
    ok = not v.strip() or _DURATION.match(v)
    return None if ok else "must be a duration such as 60 days, 3 months or 1 year"


def _date(v: str) -> str | None:
    return None if not v.strip() or _DATE.match(v) else "must be a date such as 2026-01-31"


SCHEMA: Mapping[str, Mapping[str, Key]] = {
    "node": {
        "nickname": Key(
            _text, "(empty)", "name shown to other nodes (hiding the IP: a warning if set)"
        ),
        "reveal-IP-address": Key(
            _bool,
            "true",
            "false: connect only through Tor and refuse any setting that could reveal the "
            "IP address",
        ),
        "anonymize": Key(_bool, "false", "older synonym of reveal-IP-address = false"),
        "tub.port": Key(_text, "", "a Tahoe node directory's storage listener (tcp:PORT)"),
        "tub.location": Key(
            _text, "", "announced locations (a Tahoe node's NURLs; a veil node's onion address)"
        ),
        "web.port": Key(_text, "", "the web gateway, e.g. tcp:3456:interface=127.0.0.1"),
        "web.onion": Key(
            _bool, "false", "also publish the web gateway as an onion service (for Tor Browser)"
        ),
        "web.static": _tahoe("static web files", default="public_html"),
        "log_gatherer.furl": _tahoe("Foolscap log gatherer"),
        "timeout.keepalive": _tahoe("connection keepalive"),
        "timeout.disconnect": _tahoe("disconnect timeout"),
        "tempdir": _tahoe("temporary directory"),
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
        "introducer.furl": _tahoe("Foolscap introducer (use private/introducers.yaml)"),
        "helper.furl": _tahoe("upload helper"),
        "key_generator.furl": _tahoe("RSA key generator"),
        "mutable.format": _tahoe("default mutable format (use --format)", _choice("sdmf", "mdmf")),
        "peers.preferred": _tahoe("servers to prefer"),
        "storage.plugins": _tahoe("client storage plugins"),
        "force_foolscap": _tahoe_flag("Foolscap instead of HTTPS"),
    },
    "storage": {
        "enabled": Key(_bool, "true", "serve storage when 'veil run'"),
        "port": Key(_int(0, 65535), "(chosen at creation)", "HTTPS port of the storage server"),
        "hostname": Key(
            _hostname,
            "127.0.0.1",
            "address bound and announced in the NURL (absent: onion service only)",
        ),
        "reserved_space": Key(_size, "0", "free disk space to leave untouched (10G, 500M)"),
        "readonly": Key(_bool, "false", "accept no new immutable shares; serve existing ones"),
        "storage_dir": Key(_text, "storage", "where shares are kept (relative: to the node)"),
        "anonymous": Key(_bool, "true", "false: no anonymous storage (veil then refuses to run)"),
        "backend": Key(
            _choice("disk", "s3"),
            "disk",
            "where shares live: disk (storage_dir) or s3 (a bucket, see docs/s3.md)",
        ),
        "s3.endpoint": Key(_http_url, "(AWS)", "S3 endpoint URL; empty: AWS for s3.region"),
        "s3.bucket": Key(_text, "(empty)", "the bucket (backend = s3; must exist)"),
        "s3.prefix": Key(_text, "(empty)", "key prefix inside the bucket, one per server"),
        "s3.region": Key(
            _text,
            "us-east-1",
            "S3 region; credentials: private/s3.credentials (AWS format), never here",
        ),
        "relays": Key(
            _text,
            "",
            "relays that reach this server behind NAT (docs/relays.md; 'veil relay join')",
        ),
        "relays.tor": Key(
            _bool,
            "false (true when hiding the IP address)",
            "open the tunnels to relays through Tor",
        ),
        "expire.enabled": Key(
            _bool, "false", "delete shares whose every lease has expired (Tahoe's rules)"
        ),
        "expire.mode": Key(
            _choice("age", "cutoff-date"),
            "age",
            "age: leases older than override_lease_duration expire; cutoff-date: leases "
            "last renewed before cutoff_date",
        ),
        "expire.override_lease_duration": Key(
            _duration,
            "(none: as Tahoe, nothing expires in age mode)",
            "lease age that expires it: 60 days, 3 months, 1 year (veil also: seconds, hours)",
        ),
        "expire.cutoff_date": Key(_date, "(none)", "YYYY-MM-DD, UTC (cutoff-date mode)"),
        "expire.immutable": Key(_bool, "true", "false: leases on immutable shares never expire"),
        "expire.mutable": Key(_bool, "true", "false: leases on mutable shares never expire"),
        "debug_discard": _tahoe_flag("discard share data (testing)"),
        "plugins": _tahoe("server storage plugins"),
        "grid_management": _tahoe_flag("grid-manager certificates"),
        "force_foolscap": _tahoe_flag("Foolscap instead of HTTPS"),
    },
    "introducer": {
        "enabled": Key(_bool, "false", "run an introducer in this node ('veil create-introducer')"),
        "port": Key(_int(0, 65535), "(chosen at creation)", "HTTPS port of the introducer"),
        "hostname": Key(
            _hostname, "127.0.0.1", "address bound and announced in the introducer NURL"
        ),
    },
    "helper": {"enabled": _tahoe_flag("upload helper")},
    "sftpd": {
        "enabled": _tahoe_flag("SFTP front end"),
        **{
            k: _tahoe("SFTP front end")
            for k in ("port", "host_pubkey_file", "host_privkey_file", "accounts.file")
        },
    },
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
    "i2p": {
        "enabled": Key(
            _bool, "true", "reach I2P (pb+i2p://) servers; written true: needed at start"
        ),
        "sam.port": Key(
            _endpoint, "tcp:127.0.0.1:7656", "the I2P router's SAM bridge (i2pd or Java I2P)"
        ),
        "dest": Key(_bool, "false", "serve this node's servers as an I2P destination"),
        "dest.port": Key(_int(1, 65535), "3457", "port in the I2P NURL and fURL hint"),
        "dest.private_key_file": Key(
            _text, "private/i2p_dest.privkey", "the I2P destination's key (keep it secret)"
        ),
        **{
            k: _tahoe("launching an I2P router")
            for k in ("launch", "i2p.executable", "i2p.configdir")
        },
    },
}

# Sections that take any key: Tahoe's dynamic sections (grid managers, storage
# plugins) and two it has dropped, accepted so old files load. None is used.
OPEN_SECTIONS = {
    "grid_managers": "grid managers whose certificates servers must carry",
    "grid_manager_certificates": "this server's grid-manager certificates",
    "ftpd": "the FTP front end (removed from Tahoe)",
}
OPEN_PREFIXES = {
    "storageserver.plugins.": "a server storage plugin",
    "storageclient.plugins.": "a client storage plugin",
    "storage-plugin.": "a storage plugin",
}


def open_section(section: str) -> str | None:
    """What an any-key section is for, or None when ``section`` is not one."""
    if section in OPEN_SECTIONS:
        return OPEN_SECTIONS[section]
    return next((m for p, m in OPEN_PREFIXES.items() if section.startswith(p)), None)


def _known(section: str) -> dict[str, Key] | None:
    schema = SCHEMA.get(section)
    return None if schema is None else {k.lower(): v for k, v in schema.items()}


def validate(sections: Mapping[str, Mapping[str, str]], filename: str) -> list[str]:
    """Every problem in a parsed configuration, one line each (empty: all fine)."""
    problems = []
    for section, values in sections.items():
        known = _known(section)
        if known is None:
            if open_section(section) is None:
                allowed = ", ".join(f"[{s}]" for s in SCHEMA)
                problems.append(f"{filename}: unknown section [{section}] (allowed: {allowed})")
            continue
        for key, value in values.items():
            spec = known.get(key.lower())
            if spec is None:
                close = ", ".join(sorted(SCHEMA[section])) or "none"
                problems.append(
                    f"{filename}: [{section}] {key} is not a known key (allowed: {close})"
                )
                continue
            problem = spec.check(value)
            if problem:
                problems.append(f"{filename}: [{section}] {key} = {value!r} {problem}")
    return problems or cross_problems(sections, filename)


def cross_problems(sections: Mapping[str, Mapping[str, str]], filename: str) -> list[str]:
    """Rules between keys (k <= N, 1 <= happy <= N), checked when each key alone is fine."""
    from veil.errors import UsageError
    from veil.formats.params import EncodingParameters

    client = {k.lower(): v for k, v in sections.get("client", {}).items()}
    try:
        EncodingParameters(
            int(client.get("shares.needed", "3")),
            int(client.get("shares.happy", "7")),
            int(client.get("shares.total", "10")),
        )
    except (UsageError, ValueError) as exc:
        return [f"{filename}: [client] {exc}"]
    return []


def ignored(sections: Mapping[str, Mapping[str, str]]) -> list[str]:
    """One line per setting veil accepts but does not act on, when it is switched on."""
    out = []
    for section, values in sections.items():
        known = _known(section)
        if known is None:
            meaning = open_section(section)
            if meaning is not None and values:
                out.append(f"[{section}] ({meaning}) is ignored: veil does not support it")
            continue
        for key, value in values.items():
            spec = known.get(key.lower())
            if spec is None or spec.used:
                continue
            v = value.strip().lower()
            if v in _OFF or v == spec.default.lower():
                continue
            # the value is not shown: a fURL holds a secret
            out.append(f"[{section}] {key} is set, but veil ignores it (Tahoe: {spec.tahoe_use})")
    return out


def hides_ip(sections: Mapping[str, Mapping[str, str]]) -> bool:
    """True when the configuration asks never to reveal the IP address."""
    node = {k.lower(): v.strip().lower() for k, v in sections.get("node", {}).items()}
    return node.get("reveal-ip-address") in ("false", "no", "off", "0") or node.get(
        "anonymize"
    ) in ("true", "yes", "on", "1")


def markdown_table() -> str:
    """The README's table of every key: section, key, default, meaning."""
    rows = ["| section | key | default | meaning |", "|---|---|---|---|"]
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            default = spec.default or "(empty)"
            rows.append(f"| `[{section}]` | `{key}` | {default} | {spec.meaning} |")
    return "\n".join(rows) + "\n"
