"""The node's lists of servers and introducers: ``private/servers.yaml`` and
``private/introducers.yaml``, in Tahoe's formats.

Read fail-closed (a file that is there but unreadable, not UTF-8 or not the
expected YAML stops the command with one line); written as secrets (0600),
since announcements and introducer NURLs hold swissnums.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from veil.adapters.node.files import present, read_text, write_private
from veil.errors import ConfigError


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None


def read_servers(path: Path) -> dict[str, dict[str, Any]]:
    """{server id: announcement dict} from a ``servers.yaml`` (empty if absent)."""
    if not present(path):
        return {}
    doc = _load(path)
    storage = doc.get("storage") if isinstance(doc, dict) else None
    if not isinstance(storage, dict):
        raise ConfigError(f"{path} must have a top-level 'storage:' mapping")
    out: dict[str, dict[str, Any]] = {}
    for server_id, entry in storage.items():
        ann = entry.get("ann") if isinstance(entry, dict) else None
        if not isinstance(ann, dict):
            raise ConfigError(f"{path}: server {server_id} has no 'ann:' mapping")
        out[str(server_id)] = ann
    return out


def read_introducers(path: Path) -> dict[str, str]:
    """{petname: introducer NURL} from an ``introducers.yaml`` (empty if absent)."""
    if not present(path):
        return {}
    doc = _load(path)
    entries = doc.get("introducers") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"{path} must have a top-level 'introducers:' mapping")
    out = {}
    for petname, entry in entries.items():
        furl = entry.get("furl") if isinstance(entry, dict) else None
        if not isinstance(petname, str) or not isinstance(furl, str):
            raise ConfigError(f"{path}: introducer {petname!r} needs a string 'furl:'")
        out[petname] = furl
    return out


def write_introducers(path: Path, entries: dict[str, str]) -> None:
    doc = {"introducers": {p: {"furl": f} for p, f in entries.items()}}
    write_private(path, yaml.safe_dump(doc))


def write_servers(path: Path, servers: dict[str, dict[str, Any]]) -> None:
    doc = {"storage": {sid: {"ann": ann} for sid, ann in servers.items()}}
    write_private(path, yaml.safe_dump(doc, sort_keys=True))
