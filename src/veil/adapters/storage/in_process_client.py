"""A ``StorageClient`` over a storage server core in the same process.

Used to test the uploader and downloader with real server logic and no
sockets. ``fail = True`` makes every call raise ``ServerUnavailable``, like a
dead server; ``hang = True`` makes every call wait forever, like a stuck one;
``die_after_writes = n`` makes it die once n share writes have succeeded.
It also speaks veil's batch extension when the server core's version offers it.
"""

from __future__ import annotations

import asyncio

from veil.errors import ServerUnavailable
from veil.formats.storage_types import IdentifiedServer, TestWrite, TestWriteResult
from veil.formats.wire_batch import BatchUpload, BatchUploadResult
from veil.services.interfaces import AllocateResult, StorageService, VersionInfo, WriteResult
from veil.services.storage.batch import run_mutable_read_batch, run_read_batch, run_upload_batch


class LocalStorageClient(IdentifiedServer):
    def __init__(
        self,
        service: StorageService,
        *,
        server_id: str,
        lease_seed: bytes,
        permutation_seed: bytes,
    ) -> None:
        super().__init__(
            server_id=server_id, lease_seed=lease_seed, permutation_seed=permutation_seed
        )
        self.service = service
        self.fail = False
        self.hang = False
        self.calls = 0
        self.writes = 0
        self.die_after_writes: int | None = None

    async def _gate(self) -> None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise ServerUnavailable(f"server {self._server_id[:12]} is unreachable")

    async def get_version(self) -> VersionInfo:
        await self._gate()
        return self.service.get_version()

    async def allocate_buckets(
        self,
        storage_index: bytes,
        share_numbers: frozenset[int],
        allocated_size: int,
        *,
        renew_secret: bytes,
        cancel_secret: bytes,
        upload_secret: bytes,
    ) -> AllocateResult:
        await self._gate()
        return self.service.allocate_buckets(
            storage_index,
            share_numbers,
            allocated_size,
            renew_secret=renew_secret,
            cancel_secret=cancel_secret,
            upload_secret=upload_secret,
        )

    async def write_share_chunk(
        self,
        storage_index: bytes,
        share_number: int,
        offset: int,
        data: bytes | memoryview,
        *,
        upload_secret: bytes,
    ) -> WriteResult:
        if self.die_after_writes is not None and self.writes >= self.die_after_writes:
            self.fail = True
        await self._gate()
        result = self.service.write_share_chunk(
            storage_index, share_number, offset, data, upload_secret=upload_secret
        )
        self.writes += 1
        return result

    async def abort_upload(
        self, storage_index: bytes, share_number: int, *, upload_secret: bytes
    ) -> None:
        await self._gate()
        self.service.abort_upload(storage_index, share_number, upload_secret=upload_secret)

    async def list_shares(self, storage_index: bytes) -> frozenset[int]:
        await self._gate()
        return self.service.list_shares(storage_index)

    async def read_share_chunk(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        await self._gate()
        return self.service.read_share_chunk(storage_index, share_number, offset, length)

    async def advise_corrupt_share(
        self, storage_index: bytes, share_number: int, reason: str
    ) -> None:
        await self._gate()
        self.service.advise_corrupt_share(storage_index, share_number, reason)

    async def add_or_renew_lease(
        self, storage_index: bytes, *, renew_secret: bytes, cancel_secret: bytes
    ) -> None:
        await self._gate()
        self.service.add_or_renew_lease(
            storage_index, renew_secret=renew_secret, cancel_secret=cancel_secret
        )

    async def mutable_list_shares(self, storage_index: bytes) -> frozenset[int]:
        await self._gate()
        return self.service.mutable_list_shares(storage_index)

    async def mutable_read(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        await self._gate()
        return self.service.mutable_read(storage_index, share_number, offset, length)

    async def mutable_read_test_write(
        self,
        storage_index: bytes,
        vectors: dict[int, TestWrite],
        read_vector: list[tuple[int, int]],
        *,
        write_enabler: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
    ) -> TestWriteResult:
        await self._gate()
        self.writes += 1
        return self.service.mutable_read_test_write(
            storage_index,
            vectors,
            read_vector,
            write_enabler=write_enabler,
            renew_secret=renew_secret,
            cancel_secret=cancel_secret,
        )

    async def mutable_advise_corrupt(
        self, storage_index: bytes, share_number: int, reason: str
    ) -> None:
        await self._gate()
        self.service.mutable_advise_corrupt(storage_index, share_number, reason)

    async def upload_batch(self, items: list[BatchUpload]) -> list[BatchUploadResult]:
        """veil's batch extension; with ``die_after_writes`` set, the server does
        the work and then dies before answering (the worst case for a client)."""
        await self._gate()
        results = run_upload_batch(self.service, items)
        self.writes += sum(len(r.written) for r in results)
        if self.die_after_writes is not None and self.writes >= self.die_after_writes:
            self.fail = True
            raise ServerUnavailable(f"server {self._server_id[:12]} died during a batch")
        return results

    async def read_batch(self, storage_indexes: list[bytes]) -> list[dict[int, bytes | int]]:
        await self._gate()
        return run_read_batch(self.service, storage_indexes)

    async def mutable_read_batch(self, storage_index: bytes, length: int) -> dict[int, bytes]:
        await self._gate()
        return run_mutable_read_batch(self.service, storage_index, length)

    async def close(self) -> None:
        return None
