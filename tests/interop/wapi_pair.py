"""A veil gateway beside a live Tahoe 1.20 client, on the same grid, for the same caps.

``veil_beside(tahoe_client, root)`` copies the Tahoe client's node directory
(same servers.yaml, same convergence secret, so the same immutable caps),
gives the copy its own ``web.port``, and runs ``veil run`` on it: the web API
of both can then be asked the same question. Test code, not part of veil.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.wapi_gateway import free_port, gateway_on, set_web_port

from .tahoe_harness import TahoeNode

SKIP = shutil.ignore_patterns("*.pid", "logs", "run.log", "node.url", "twistd.log")


@contextmanager
def veil_beside(tahoe: TahoeNode, root: Path) -> Iterator[tuple[str, Path]]:
    """(URL of veil's gateway, its node directory) for a copy of ``tahoe``'s node."""
    node = root / "veil-client"
    shutil.copytree(tahoe.path, node, ignore=SKIP)
    set_web_port(node, f"tcp:{free_port()}:interface=127.0.0.1")
    with gateway_on(node) as url:
        yield url, node
