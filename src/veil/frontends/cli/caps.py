"""Commands that work on caps alone, with no grid: ``attenuate`` and aliases.

veil attenuate CAP [--verify]     the read-only (or verify) cap of a cap
veil add-alias NAME DIRCAP        remember a directory cap under a name
veil list-aliases [--readonly-uri] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from veil.errors import UsageError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "attenuate",
        help="print the read-only cap of a cap (or its verify cap); no network needed",
    )
    p.add_argument("cap", help="a write or read cap (file or directory)")
    p.add_argument("--verify", action="store_true", help="print the verify cap instead")
    p.set_defaults(func=run_attenuate)

    p = sub.add_parser("add-alias", help="give a directory cap a name (private/aliases)")
    p.add_argument("alias")
    p.add_argument("cap", help="a directory cap (URI:DIR2…)")
    p.set_defaults(func=run_add_alias)

    p = sub.add_parser("list-aliases", help="list the aliases of this node")
    p.add_argument("--readonly-uri", action="store_true", help="show read-only caps only")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_list_aliases)


def run_attenuate(args: argparse.Namespace) -> int:
    from veil.formats.mutable_caps import attenuate, parse_user_cap

    sys.stdout.write(attenuate(parse_user_cap(args.cap), verify=args.verify).to_string() + "\n")
    return 0


def run_add_alias(args: argparse.Namespace) -> int:
    from veil.adapters.node.aliases import Aliases
    from veil.formats.mutable_caps import DirCap, parse_user_cap

    cap = parse_user_cap(args.cap)
    if not isinstance(cap, DirCap):
        raise UsageError(
            "an alias names a directory; this cap is a file",
            hint="directory caps start with URI:DIR2",
        )
    Aliases(Path(args.node_directory)).add(args.alias, cap.to_string())
    sys.stdout.write(f"Alias {args.alias!r} added\n")
    return 0


def run_list_aliases(args: argparse.Namespace) -> int:
    from veil.adapters.node.aliases import Aliases
    from veil.formats.mutable_caps import DirCap, attenuate, parse_any

    rows = {}
    for name, text in Aliases(Path(args.node_directory)).load().items():
        cap = parse_any(text)
        readonly = attenuate(cap).to_string() if isinstance(cap, DirCap) else text
        readwrite = text if readonly != text else None
        rows[name] = {"readwrite": readwrite, "readonly": readonly}
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
        return 0
    width = max((len(n) for n in rows), default=0)
    for name, row in rows.items():
        shown = row["readonly"] if args.readonly_uri else row["readwrite"] or row["readonly"]
        sys.stdout.write(f"{name:>{width}}: {shown}\n")
    return 0
