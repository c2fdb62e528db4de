"""The web gateway as an onion service, for Tor Browser (``[node] web.onion = true``).

Tor Browser sends every address, 127.0.0.1 too, through Tor, and Tor will
not connect to a loopback address, so on Tails the gateway at
``http://127.0.0.1:PORT/`` cannot be opened there. With ``web.onion`` the
node also publishes the gateway as a v3 onion service (port 80 to the
gateway's loopback port), with its own key in ``private/web_onion.privkey``
(so the address stays the same across restarts) and the address in
``private/web.onion``, where ``veil webopen`` finds it. It goes through the
control port as the node's other onion services do (one ``ADD_ONION`` with
one port: the shipped onion-grater profile allows it). Knowing the address
is not enough to use the UI (it needs ``veil webopen``'s one-time ticket);
Tahoe's web API behind it works with caps, as on the loopback port.
"""

from __future__ import annotations

import os
from pathlib import Path

from veil.adapters.net.connection_policy import Networks
from veil.adapters.net.tor import OnionService
from veil.adapters.node.files import present, read_text, write_private
from veil.errors import ConfigError
from veil.formats.onion import OnionKey, parse_key_blob

KEY_FILE = "web_onion.privkey"
ADDRESS_FILE = "web.onion"
ONION_PORT = 80


def web_onion_address(node_dir: Path) -> str | None:
    """The gateway's onion address, if the node has published one."""
    path = node_dir / "private" / ADDRESS_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.endswith(".onion") else None


def _key(private: Path) -> str:
    path = private / KEY_FILE
    if not present(path):
        write_private(path, OnionKey.from_seed(os.urandom(32)).to_blob() + "\n")
    try:
        return parse_key_blob(read_text(path))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{path} is not an onion key: {exc}") from None


async def publish_web_onion(node_dir: Path, networks: Networks, local_port: int) -> OnionService:
    """Publish the gateway listening on 127.0.0.1:``local_port``; stop it with ``.stop()``."""
    private = node_dir / "private"
    blob = _key(private)
    await networks.ensure_tor()
    endpoint, cookie = await networks.control_port()
    service = await OnionService.start(
        endpoint,
        blob,
        [(ONION_PORT, local_port)],
        password=os.environ.get("TOR_CONTROL_PASSWD"),
        cookie_file=cookie,
    )
    write_private(private / ADDRESS_FILE, service.address + "\n")
    return service
