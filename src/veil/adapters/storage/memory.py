"""An in-memory ``Backend``: a verified fake for tests and demos.

It passes the same conformance suite as ``DiskBackend`` and ``S3Backend``
(``veil.testing.backend_conformance``); nothing survives the process.
"""

from __future__ import annotations

from veil.formats.container import Lease


class MemoryIncomingShare:
    def __init__(self, backend: MemoryBackend, key: tuple[bytes, int], size: int) -> None:
        self._backend = backend
        self._key = key
        self._size = size
        self._data = bytearray()  # grows as written: an allocation alone costs nothing

    def write(self, offset: int, data: bytes | memoryview) -> None:
        if len(self._data) < offset:
            self._data.extend(bytes(offset - len(self._data)))
        self._data[offset : offset + len(data)] = data

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._data[offset : offset + length])

    def finalize(self, leases: list[Lease]) -> None:
        data = bytes(self._data[: self._size]).ljust(self._size, b"\0")
        self._backend.shares[self._key] = (data, list(leases))

    def abort(self) -> None:
        self._data = bytearray()


class MemoryBackend:
    def __init__(self, capacity: int = 10**12) -> None:
        self.capacity = capacity
        self.shares: dict[tuple[bytes, int], tuple[bytes, list[Lease]]] = {}
        self.advisories: list[tuple[bytes, int, str]] = []
        self.slots: dict[tuple[bytes, int], bytearray] = {}

    def list_slots(self, storage_index: bytes) -> frozenset[int]:
        return frozenset(sh for si, sh in self.slots if si == storage_index)

    def read_slot(self, storage_index: bytes, share_number: int, offset: int, length: int) -> bytes:
        return bytes(self.slots[(storage_index, share_number)][offset : offset + length])

    def write_slot(
        self, storage_index: bytes, share_number: int, writes: list[tuple[int, bytes]]
    ) -> None:
        slot = self.slots.setdefault((storage_index, share_number), bytearray())
        for offset, data in writes:
            if len(slot) < offset:
                slot.extend(bytes(offset - len(slot)))
            slot[offset : offset + len(data)] = data

    def delete_slot(self, storage_index: bytes, share_number: int) -> None:
        self.slots.pop((storage_index, share_number), None)

    def delete_share(self, storage_index: bytes, share_number: int) -> None:
        self.shares.pop((storage_index, share_number), None)

    def storage_indexes(self) -> list[bytes]:
        return sorted({si for si, _ in self.shares} | {si for si, _ in self.slots})

    def list_shares(self, storage_index: bytes) -> frozenset[int]:
        return frozenset(sh for si, sh in self.shares if si == storage_index)

    def create_incoming(
        self, storage_index: bytes, share_number: int, allocated_size: int
    ) -> MemoryIncomingShare:
        return MemoryIncomingShare(self, (storage_index, share_number), allocated_size)

    def share_length(self, storage_index: bytes, share_number: int) -> int:
        return len(self.shares[(storage_index, share_number)][0])

    def read_share(
        self, storage_index: bytes, share_number: int, offset: int, length: int
    ) -> bytes:
        return self.shares[(storage_index, share_number)][0][offset : offset + length]

    def uses_hashed_leases(self, storage_index: bytes, share_number: int) -> bool:
        return True

    def get_leases(self, storage_index: bytes, share_number: int) -> list[Lease]:
        return list(self.shares[(storage_index, share_number)][1])

    def set_leases(self, storage_index: bytes, share_number: int, leases: list[Lease]) -> None:
        data, _ = self.shares[(storage_index, share_number)]
        self.shares[(storage_index, share_number)] = (data, list(leases))

    def add_corruption_advisory(self, storage_index: bytes, share_number: int, reason: str) -> None:
        self.advisories.append((storage_index, share_number, reason))

    def corruption_advisory_bytes(self) -> int:
        return sum(len(r.encode()) for _, _, r in self.advisories)

    def free_space(self) -> int:
        used = sum(len(d) for d, _ in self.shares.values()) + sum(map(len, self.slots.values()))
        return self.capacity - used
