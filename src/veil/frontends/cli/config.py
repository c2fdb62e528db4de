"""``veil config list|get|set``: read and edit ``tahoe.cfg`` without a text editor.

``set`` loads the file as every command does (so an unreadable or broken one
is refused), checks the new value and every cross-key rule (k <= N, happy
within range) exactly as loading does, and writes atomically, keeping the
file's mode but never making it writable by others: a typo can never leave a
node that will not start.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from veil.errors import ConfigError, UsageError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="show or change a node's tahoe.cfg settings")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    ls = csub.add_parser("list", help="every setting, its value and default")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    get = csub.add_parser("get", help="print one setting, e.g. client.shares.needed")
    get.add_argument("key", help="SECTION.KEY")
    get.set_defaults(func=run_get)
    st = csub.add_parser("set", help="change one setting, e.g. storage.reserved_space 10G")
    st.add_argument("key", help="SECTION.KEY")
    st.add_argument("value")
    st.set_defaults(func=run_set)


def _split(name: str) -> tuple[str, str]:
    from veil.formats.config_schema import SCHEMA

    section, dot, key = name.partition(".")
    if not dot or section not in SCHEMA:
        raise UsageError(
            f"{name!r} is not SECTION.KEY",
            hint="sections: " + ", ".join(SCHEMA) + "; see 'veil config list'",
        )
    return section, key


def run_list(args: argparse.Namespace) -> int:
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.formats.config_schema import SCHEMA

    node = NodeDirectory(Path(args.node_directory))
    rows = []
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            value = node.config.get(section, key, fallback=None)
            rows.append(
                {
                    "key": f"{section}.{key}",
                    "value": value,
                    "default": spec.default,
                    "meaning": spec.meaning,
                }
            )
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
    else:
        for r in rows:
            shown = r["value"] if r["value"] is not None else f"(default: {r['default']})"
            sys.stdout.write(f"{r['key']} = {shown}\n")
    return 0


def run_get(args: argparse.Namespace) -> int:
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.formats.config_schema import SCHEMA

    section, key = _split(args.key)
    if key not in SCHEMA[section]:
        raise UsageError(f"unknown setting {args.key}", hint="see 'veil config list'")
    node = NodeDirectory(Path(args.node_directory))
    value = node.config.get(section, key, fallback=SCHEMA[section][key].default)
    sys.stdout.write(f"{value}\n")
    return 0


def run_set(args: argparse.Namespace) -> int:
    from veil.adapters.node.files import write_public
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.formats.config_schema import validate

    section, key = _split(args.key)
    if "\n" in args.value or "\r" in args.value:
        raise ConfigError(
            f"{args.key}: a value cannot hold a line break", hint="nothing was changed"
        )
    node = NodeDirectory(Path(args.node_directory))  # refuses a file it cannot read or parse
    cfg = node.config
    if not cfg.has_section(section):
        cfg.add_section(section)
    cfg.set(section, key, args.value)
    problems = validate({s: dict(cfg[s]) for s in cfg.sections()}, str(node.config_path))
    if problems:
        raise ConfigError(problems[0], hint="nothing was changed")
    from veil.adapters.node.creation import config_text

    mode = stat.S_IMODE(os.stat(node.config_path).st_mode) & 0o644
    write_public(node.config_path, config_text(cfg), mode | 0o600)
    sys.stdout.write(f"{section}.{key} = {args.value}\n")
    return 0
