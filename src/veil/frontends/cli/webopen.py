"""``veil webopen [ALIAS:PATH]``: open the node's web UI (at a folder) in a browser.

The address comes from ``node.url``, which ``veil run`` writes when the node
serves its web gateway (``[node] web.port``). The UI answers only sessions
opened with a one-time ticket (``veil.adapters.web.ui.access``): this command
makes one, prints the address that carries it (it works once, within two
minutes, so the printed line is worth nothing afterwards), and opens it when a
graphical browser is there (``$DISPLAY`` or ``$WAYLAND_DISPLAY``; never a
terminal browser that would take over this terminal). A node with
``web.onion`` also gets its onion address printed, for Tor Browser (which
cannot open 127.0.0.1).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlencode

from veil.errors import ConfigError, UsageError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("webopen", help="open the web UI in a browser (at ALIAS:PATH)")
    p.add_argument("path", nargs="?", metavar="ALIAS:PATH", help="a folder to open at")
    p.add_argument("--print-only", action="store_true", help="print the address, open nothing")
    p.set_defaults(func=run)


def node_url(node: Path) -> str:
    try:
        text = (node / "node.url").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"{node} has no node.url: its web gateway is not running",
            hint="set one with: veil config set node.web.port tcp:3456:interface=127.0.0.1, "
            "then start the node with: veil run",
        ) from None
    if not text.startswith("http://"):
        raise ConfigError(f"{node / 'node.url'} does not hold an http:// address")
    return text.rstrip("/")


def start_page(node: Path, path: str | None) -> str:
    if not path:
        return "/"
    from veil.adapters.node.aliases import Aliases

    alias, sep, rest = path.partition(":")
    if not sep:
        raise UsageError(f"{path!r} is not ALIAS:PATH", hint="e.g. veil webopen tahoe:docs")
    if alias not in Aliases(node).load():
        raise UsageError(f"unknown alias {alias!r}", hint="make one with: veil create-alias NAME")
    query = {"alias": alias, **({"path": rest.strip("/")} if rest.strip("/") else {})}
    return "/ui/files/browse?" + urlencode(query)


def _can_open() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    from veil.adapters.web.ui.access import issue_ticket, login_path
    from veil.adapters.web.web_onion import web_onion_address

    node = Path(args.node_directory)
    base = node_url(node)
    if not (node / "private").is_dir():
        raise ConfigError(f"{node} is not a node directory (no private/)")
    path = login_path(issue_ticket(node), start_page(node, args.path))
    address = base + path
    sys.stdout.write(f"{address}\n")
    onion = web_onion_address(node)
    if onion:  # Tor Browser cannot open 127.0.0.1; the same one-time ticket works here
        sys.stdout.write(f"in Tor Browser: http://{onion}{path}\n")
    sys.stdout.write("(this address opens the page once, within two minutes)\n")
    if not args.print_only and _can_open():
        import webbrowser

        webbrowser.open(address)
    return 0
