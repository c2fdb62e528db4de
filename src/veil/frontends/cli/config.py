"""``veil config list|get|set``: read and edit ``tahoe.cfg`` without a text editor.

``set`` checks the new value against the schema before writing, and writes
atomically, so a typo can never leave a node that will not start.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
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


def _node(args: argparse.Namespace) -> Path:
    from veil.adapters.node.nodedir import NodeDirectory

    return NodeDirectory(Path(args.node_directory)).config_path


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
    from veil.formats.config_schema import validate

    section, key = _split(args.key)
    path = _node(args)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(path, encoding="utf-8")
    if not cfg.has_section(section):
        cfg.add_section(section)
    cfg.set(section, key, args.value)
    problems = validate({s: dict(cfg[s]) for s in cfg.sections()}, str(path))
    if problems:
        raise ConfigError(problems[0], hint="nothing was changed")
    tmp = path.with_suffix(".cfg.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        cfg.write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sys.stdout.write(f"{section}.{key} = {args.value}\n")
    return 0
