"""The shipped onion-grater profile, checked against onion-grater's rules.

onion-grater (Tails, Whonix) reads every ``/etc/onion-grater.d/*.yml`` as a
list of filters and, for each control-port client, uses the one filter whose
qualifiers all match: ``apparmor-profiles`` and ``users`` for a local client,
``hosts`` for a remote one, each a list where ``*`` matches anything and a
missing list matches nothing. No filter, or more than one, and every command is
refused. A command passes when a rule's pattern matches its whole argument
string; a ``replacement`` rewrites it with the match groups and
``{client-address}``. ``matching_filter`` and ``admit`` below follow those
documented rules, so the qualifiers are tested, not only the patterns.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from veil.formats.tor_control import add_onion, del_onion

ROOT = Path(__file__).parents[2]
PROFILE = ROOT / "packaging" / "onion-grater" / "40_veil.yml"
APPARMOR = ROOT / "packaging" / "apparmor" / "veil"
QUALIFIERS = {"apparmor-profiles", "users", "hosts"}
KNOWN_KEYS = QUALIFIERS | {"name", "commands", "confs", "events", "tor-browser-mode"}
KEY = "ED25519-V3:" + "A" * 86 + "=="
SID = "a" * 56

# A profile as other applications ship them (Whonix's examples match any client).
OTHER_APP = {
    "name": "other",
    "apparmor-profiles": ["torbrowser_firefox"],
    "users": ["*"],
    "commands": {"GETINFO": [{"pattern": "version"}]},
}


def load() -> list[dict[str, Any]]:
    filters = yaml.safe_load(PROFILE.read_text())
    assert isinstance(filters, list)
    return filters


def matching_filter(
    filters: list[dict[str, Any]], *, profile: str = "", user: str = "", host: str | None = None
) -> dict[str, Any] | None:
    matchers = [("hosts", host)] if host else [("apparmor-profiles", profile), ("users", user)]
    found = [
        f
        for f in filters
        if all(any(v in (want, "*") for v in f.get(key, []) or []) for key, want in matchers)
    ]
    return found[0] if len(found) == 1 else None


def admit(flt: dict[str, Any] | None, line: str, client_address: str) -> str | None:
    """The line onion-grater sends on to Tor, or None if it answers 510 filtered."""
    if flt is None:
        return None
    cmd, _, args = line.partition(" ")
    for rule in (flt.get("commands") or {}).get(cmd.upper(), []) or []:
        rule = {"pattern": rule} if isinstance(rule, str) else rule
        match = re.match(rule["pattern"] + "$", args)
        if match:
            if "replacement" not in rule:
                return line
            new = rule["replacement"].format(*match.groups(), **{"client-address": client_address})
            return f"{cmd} {new}"
    return None


def test_the_profile_uses_only_qualifiers_current_onion_grater_knows() -> None:
    for flt in load():
        assert set(flt) <= KNOWN_KEYS, set(flt) - KNOWN_KEYS
        assert "exe-paths" not in flt
        assert flt.get("apparmor-profiles"), (
            "a filter without apparmor-profiles matches no local client"
        )


def test_it_names_the_apparmor_profile_veil_ships_and_no_wildcard() -> None:
    declared = re.search(r"^profile (\S+) ", APPARMOR.read_text(), re.M)
    assert declared is not None
    for flt in load():
        assert flt["apparmor-profiles"] == [declared.group(1)]
        assert "*" not in flt.get("hosts", [])


@pytest.mark.parametrize("user", ["amnesia", "user", "debian-tor"])
def test_veil_under_its_profile_may_add_and_remove_its_onion_service(user: str) -> None:
    flt = matching_filter([*load(), OTHER_APP], profile="veil", user=user)
    one = add_onion(KEY, [(3457, "127.0.0.1:41000")])
    two = add_onion(KEY, [(3457, "127.0.0.1:41000"), (3458, "127.0.0.1:41001")])
    assert admit(flt, one, "127.0.0.1") == one
    assert admit(flt, two, "127.0.0.1") == two
    assert admit(flt, del_onion(SID), "127.0.0.1") == del_onion(SID)


def test_the_whonix_workstation_gets_the_service_forwarded_to_itself() -> None:
    # the Workstation's address is the one the shipped profile names (no network is used)
    [workstation] = load()[0]["hosts"]
    flt = matching_filter(load(), host=workstation)
    line = admit(flt, add_onion(KEY, [(3457, "127.0.0.1:41000")]), workstation)
    assert line == f"ADD_ONION {KEY} Flags=DiscardPK Port=3457,{workstation}:41000"


@pytest.mark.parametrize(
    "client",
    [
        {"profile": "/usr/bin/python3.11", "user": "amnesia"},  # unconfined veil or any script
        {"profile": "/usr/bin/nc.openbsd", "user": "amnesia"},
        {"profile": "torbrowser_firefox", "user": "amnesia"},
        {"host": "192.0.2.8"},
        {"host": "192.0.2.7"},
    ],
)
def test_no_other_client_gets_veils_permissions(client: dict[str, str]) -> None:
    flt = matching_filter(load(), **client)
    assert admit(flt, add_onion(KEY, [(3457, "127.0.0.1:41000")]), "127.0.0.1") is None
    assert admit(flt, del_onion(SID), "127.0.0.1") is None


@pytest.mark.parametrize(
    "line",
    [
        "GETINFO address",
        "GETCONF SocksPort",
        "SETEVENTS STREAM",
        "SIGNAL NEWNYM",
        "ADD_ONION NEW:ED25519-V3 Port=80,127.0.0.1:80",
        f"ADD_ONION {KEY} Port=3457,127.0.0.1:41000",  # without DiscardPK
        f"ADD_ONION {KEY} Flags=DiscardPK Port=3457,192.0.2.7:41000",  # elsewhere
        f"ADD_ONION {KEY} Flags=DiscardPK Port=3457,127.0.0.1:41000 Flags=Detach",
        "DEL_ONION " + "a" * 55,
    ],
)
def test_veil_itself_may_do_nothing_else(line: str) -> None:
    flt = matching_filter(load(), profile="veil", user="amnesia")
    assert admit(flt, line, "127.0.0.1") is None


def test_the_old_exe_paths_schema_filters_everything() -> None:
    """What shipped before: onion-grater found no filter for veil (the bug)."""
    old = [{"exe-paths": ["*"], "users": ["*"], "hosts": ["*"], "commands": load()[0]["commands"]}]
    flt = matching_filter(old, profile="veil", user="amnesia")
    assert admit(flt, del_onion(SID), "127.0.0.1") is None
