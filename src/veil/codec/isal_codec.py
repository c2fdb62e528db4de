"""Erasure coding through Intel ISA-L (Debian's libisal2), byte-identical to zfec.

ISA-L multiplies data by any GF(2^8) matrix in the same field as zfec (0x11D),
so handing ``ec_init_tables`` rows k..n-1 of zfec's own encoding matrix
(``veil.codec.matrix``) yields zfec's exact check blocks, many times faster.
Decoding multiplies the k received blocks by the rows of the inverted
submatrix that give the missing primary pieces; primaries that arrived are
passed through.

Threading: ctypes releases the GIL for the whole ``ec_encode_data`` call, so
``encode``/``decode`` may run in a worker thread (``asyncio.to_thread``) while
the event loop moves bytes. Tables are built once per (k, n) and per decode
set, then only read, so one codec may be shared by several threads.

Zero copies: inputs are read in place (bytes, bytearray or contiguous
memoryview slices, found through the buffer protocol), and each output is a
fresh, not yet shared ``bytes`` object of the right size that ISA-L fills
directly, as C extensions such as zfec do. No per-byte Python loops.

Not for: choosing a back-end (``veil.codec.make_codec`` does that).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence
from functools import lru_cache

from veil.codec.matrix import (
    check_blocks,
    check_parameters,
    check_share_numbers,
    decoding_matrix,
    encoding_matrix,
    segment_piece_size,
)
from veil.errors import UsageError

_LIBRARY_NAMES = ("libisal.so.2", "libisal.so")
_lib: ctypes.CDLL | None = None
_load_error: str | None = None

Tables = ctypes.Array[ctypes.c_char]
Buffer = bytes | memoryview


class _PyBuffer(ctypes.Structure):
    """CPython's ``Py_buffer``; only ``buf`` is read."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None
_new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
_new_bytes.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
_new_bytes.restype = ctypes.py_object


def load_library() -> ctypes.CDLL | None:
    """The ISA-L library, or None (then ``load_error()`` says why). Loaded once."""
    global _lib, _load_error
    if _lib is not None or _load_error is not None:
        return _lib
    errors = []
    for name in (ctypes.util.find_library("isal"), *_LIBRARY_NAMES):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.ec_init_tables.argtypes = [
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_void_p,
            ]
            lib.ec_init_tables.restype = None
            lib.ec_encode_data.argtypes = [
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            lib.ec_encode_data.restype = None
        except (OSError, AttributeError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        _lib = lib
        return lib
    _load_error = "; ".join(errors) or "libisal was not found (Debian package: libisal2)"
    return None


def load_error() -> str | None:
    """Why ISA-L could not be loaded, or None when it is loaded."""
    return None if load_library() is not None else _load_error


def _address(buf: Buffer) -> int:
    """Address of a contiguous byte buffer's first byte; ``buf`` must stay alive."""
    if isinstance(buf, bytes):
        address = ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value  # no copy
    else:
        view = _PyBuffer()
        try:
            _get_buffer(buf, ctypes.byref(view), 0)  # PyBUF_SIMPLE: contiguous bytes
        except BufferError as exc:
            raise UsageError(f"erasure coding needs contiguous byte buffers: {exc}") from exc
        address = view.buf
        _release_buffer(ctypes.byref(view))
    if address is None:  # pragma: no cover - only for zero-length buffers, never passed
        raise UsageError("erasure coding cannot use an empty buffer")
    return address


def _pointers(buffers: Sequence[Buffer]) -> ctypes.Array[ctypes.c_void_p]:
    return (ctypes.c_void_p * len(buffers))(*(_address(b) for b in buffers))


def _fresh_bytes(size: int) -> bytes:
    """A new, uninitialised ``bytes`` of ``size`` >= 1 that nothing else refers to yet."""
    out: bytes = _new_bytes(None, size)
    return out


@lru_cache(maxsize=512)
def _tables(k: int, rows: tuple[tuple[int, ...], ...]) -> Tables:
    """ISA-L's expanded multiplication tables for these coefficient rows."""
    lib = load_library()
    if lib is None:  # pragma: no cover - IsalCodec cannot be built then
        raise UsageError(f"ISA-L is not available: {load_error()}")
    coefficients = bytes(v for row in rows for v in row)
    tables = ctypes.create_string_buffer(32 * k * len(rows))
    lib.ec_init_tables(k, len(rows), coefficients, tables)
    return tables


@lru_cache(maxsize=256)
def _decode_plan(k: int, n: int, share_numbers: tuple[int, ...]) -> tuple[tuple[int, ...], Tables]:
    """For sorted ``share_numbers``: the missing primaries and tables that rebuild them."""
    inverse = decoding_matrix(k, n, share_numbers)
    missing = tuple(p for p in range(k) if p not in share_numbers)
    return missing, _tables(k, tuple(inverse[p] for p in missing))


class IsalCodec:
    """k-of-n erasure coding through ISA-L, producing exactly zfec's blocks."""

    name = "isal"

    def __init__(self, k: int, n: int) -> None:
        check_parameters(k, n)
        lib = load_library()
        if lib is None:
            raise UsageError(
                f"the ISA-L erasure coder cannot be loaded: {load_error()}",
                hint="install Debian's libisal2, or use the zfec back-end",
            )
        self._encode_data = lib.ec_encode_data
        self.k, self.n = k, n
        self._encode_tables = _tables(k, encoding_matrix(k, n)[k:]) if n > k else None

    def _multiply(
        self, tables: Tables, rows: int, inputs: Sequence[Buffer], size: int
    ) -> list[bytes]:
        """``rows`` output blocks of ``size`` bytes: the table rows times ``inputs``."""
        if size == 0:
            return [b""] * rows
        outputs = [_fresh_bytes(size) for _ in range(rows)]
        self._encode_data(
            size, self.k, rows, tables, _pointers(inputs), _pointers(outputs)
        )  # the GIL is released here; inputs and outputs are kept alive by our frame
        return outputs

    def encode(self, pieces: Sequence[Buffer]) -> list[Buffer]:
        """All n blocks; the first k are ``pieces`` themselves (not copied)."""
        size = check_blocks(self.k, pieces, "pieces")
        if self._encode_tables is None:
            return list(pieces)
        checks = self._multiply(self._encode_tables, self.n - self.k, pieces, size)
        return [*pieces, *checks]

    def encode_segment(self, segment: bytes | memoryview) -> list[Buffer]:
        """Split ``segment`` into k equal pieces (memoryview slices) and encode them."""
        size = segment_piece_size(self.k, segment)
        view = memoryview(segment)
        return self.encode([view[i * size : (i + 1) * size] for i in range(self.k)])

    def decode(self, blocks: Sequence[Buffer], share_numbers: Sequence[int]) -> list[bytes]:
        """The k primary pieces, in order, from any k distinct blocks and their numbers."""
        check_share_numbers(self.k, self.n, share_numbers)
        size = check_blocks(self.k, blocks, "blocks")
        pairs = sorted(zip(share_numbers, blocks, strict=True), key=lambda p: p[0])
        shares = tuple(s for s, _ in pairs)
        inputs = [b for _, b in pairs]
        pieces: list[bytes] = [b"" for _ in range(self.k)]
        for s, b in pairs:
            if s < self.k:
                pieces[s] = b if isinstance(b, bytes) else bytes(b)
        if shares[-1] >= self.k:  # some primary is missing
            missing, tables = _decode_plan(self.k, self.n, shares)
            for p, rebuilt in zip(
                missing, self._multiply(tables, len(missing), inputs, size), strict=True
            ):
                pieces[p] = rebuilt
        return pieces
