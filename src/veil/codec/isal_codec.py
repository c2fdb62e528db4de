"""Erasure coding through Intel ISA-L (Debian's libisal2), zfec-identical.

ISA-L multiplies by any GF(2^8) matrix in the same field as zfec, so giving it
zfec's own encoding matrix (``veil.codec.matrix``) yields zfec's exact check
blocks, an order of magnitude faster. Decoding multiplies the received blocks
by the inverse of their rows. ctypes releases the GIL during the C calls, so
encoding may run in a worker thread while the event loop moves bytes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence

from veil.codec.matrix import (
    check_parameters,
    decoding_matrix,
    encoding_matrix,
    validate_share_numbers,
)

_LIB: ctypes.CDLL | None = None
_LOAD_ERROR: str | None = None


def load_library() -> ctypes.CDLL | None:
    """The ISA-L library, or None (with ``load_error()`` saying why)."""
    global _LIB, _LOAD_ERROR
    if _LIB is not None or _LOAD_ERROR is not None:
        return _LIB
    for name in (ctypes.util.find_library("isal"), "libisal.so.2", "libisal.so"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.ec_init_tables.argtypes = [
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_char_p,
            ]
            lib.ec_init_tables.restype = None
            lib.ec_encode_data.argtypes = [
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.POINTER(ctypes.c_void_p),
                ctypes.POINTER(ctypes.c_void_p),
            ]
            lib.ec_encode_data.restype = None
            _LIB = lib
            return lib
        except (OSError, AttributeError) as exc:
            _LOAD_ERROR = str(exc)
    _LOAD_ERROR = _LOAD_ERROR or "libisal not found"
    return None


def load_error() -> str | None:
    load_library()
    return _LOAD_ERROR if _LIB is None else None


def _tables(lib: ctypes.CDLL, rows: Sequence[Sequence[int]], k: int) -> ctypes.Array[ctypes.c_char]:
    coeffs = bytes(v for row in rows for v in row)
    tables = ctypes.create_string_buffer(32 * k * len(rows))
    lib.ec_init_tables(k, len(rows), coeffs, tables)
    return tables


def _pointers(buffers: Sequence[bytes | bytearray | memoryview]) -> ctypes.Array[ctypes.c_void_p]:
    arr = (ctypes.c_void_p * len(buffers))()
    for i, b in enumerate(buffers):
        if isinstance(b, bytes):
            arr[i] = ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value
        else:
            arr[i] = ctypes.addressof(ctypes.c_char.from_buffer(b))
    return arr


class IsalCodec:
    name = "isal"

    def __init__(self, k: int, n: int) -> None:
        check_parameters(k, n)
        lib = load_library()
        if lib is None:
            raise OSError(f"ISA-L is not available: {load_error()}")
        self._lib = lib
        self.k, self.n = k, n
        enc = encoding_matrix(k, n)
        self._enc_tables = _tables(lib, enc[k:], k) if n > k else None
        self._dec_tables: dict[tuple[int, ...], ctypes.Array[ctypes.c_char]] = {}

    def _multiply(
        self, tables: ctypes.Array[ctypes.c_char], rows: int, inputs: Sequence[bytes], size: int
    ) -> list[bytearray]:
        outputs = [bytearray(size) for _ in range(rows)]
        if size:
            keep = [bytes(b) if not isinstance(b, bytes) else b for b in inputs]
            self._lib.ec_encode_data(
                size, self.k, rows, tables, _pointers(keep), _pointers(outputs)
            )
        return outputs

    def encode(self, pieces: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
        if len(pieces) != self.k:
            raise ValueError(f"expected {self.k} pieces")
        if self._enc_tables is None:
            return list(pieces)
        size = len(pieces[0])
        if any(len(p) != size for p in pieces):
            raise ValueError("pieces must have equal lengths")
        inputs = [p if isinstance(p, bytes) else bytes(p) for p in pieces]
        checks = self._multiply(self._enc_tables, self.n - self.k, inputs, size)
        return [*pieces, *(memoryview(c) for c in checks)]

    def encode_segment(self, segment: bytes | memoryview) -> list[bytes | memoryview]:
        size = len(segment) // self.k
        if size * self.k != len(segment):
            raise ValueError("segment length must be a multiple of k")
        data = bytes(segment)
        pieces = [data[i * size : (i + 1) * size] for i in range(self.k)]
        return self.encode(pieces)

    def decode(
        self, blocks: Sequence[bytes | memoryview], share_numbers: Sequence[int]
    ) -> list[bytes]:
        validate_share_numbers(self.k, self.n, share_numbers)
        order = tuple(share_numbers)
        if order == tuple(range(self.k)):
            return [bytes(b) for b in blocks]
        tables = self._dec_tables.get(order)
        if tables is None:
            tables = _tables(self._lib, decoding_matrix(self.k, self.n, order), self.k)
            self._dec_tables[order] = tables
        size = len(blocks[0])
        inputs = [bytes(b) for b in blocks]
        return [bytes(p) for p in self._multiply(tables, self.k, inputs, size)]
