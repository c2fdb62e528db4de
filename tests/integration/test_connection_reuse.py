"""One storage client keeps its TLS connection for every request of a command.

A counting TCP relay sits between the client and a real storage server: a put
of many chunks and reads must reuse one connection, not open one per request
(which cost six times the memory and twice the CPU before the fix).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

from .conftest import start_live_server

pytestmark = pytest.mark.integration


class CountingRelay:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_many_requests_share_one_connection(tmp_path: Path) -> None:
    server = await start_live_server(tmp_path / "server")
    relay = CountingRelay(server.http.port)
    port = await relay.start()
    client = server.client()
    client_via_relay = type(client)(
        replace(server.nurl, port=port),
        server_id=client.server_id,
        lease_seed=client.lease_seed,
        permutation_seed=client.permutation_seed,
    )
    await client.close()
    try:
        si, data = os.urandom(16), os.urandom(30 * 65536)
        secrets = {"renew_secret": b"r" * 32, "cancel_secret": b"c" * 32}
        await client_via_relay.allocate_buckets(
            si, frozenset({0}), len(data), upload_secret=b"u" * 32, **secrets
        )
        for i in range(30):
            chunk = data[i * 65536 : (i + 1) * 65536]
            await client_via_relay.write_share_chunk(
                si, 0, i * 65536, chunk, upload_secret=b"u" * 32
            )
        for i in range(10):
            assert (
                await client_via_relay.read_share_chunk(si, 0, i * 1000, 1000)
                == data[i * 1000 : (i + 1) * 1000]
            )
        assert relay.accepted == 1, f"{relay.accepted} connections for 42 requests"
    finally:
        await client_via_relay.close()
        await relay.stop()
        await server.http.stop()
