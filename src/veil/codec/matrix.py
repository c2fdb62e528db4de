"""GF(2^8) arithmetic and zfec's encoding matrix (digest §3.3). Pure Python.

Field: polynomial x^8+x^4+x^3+x^2+1 (0x11D), generator α = 2 — the same field
as zfec and ISA-L. zfec's n×k encoding matrix is ``V · inverse(V[0:k])`` where
row 0 of the Vandermonde matrix V is ``[1, 0, …, 0]`` and row ``r+1`` is
``[α^(r·c mod 255) for c in 0..k-1]``; its top k rows are the identity, so the
code is systematic.

This module only builds small matrices (at most 256×256) once per (k, n) or
per decode set; multiplying data by them is the back-ends' job
(``veil.codec.isal_codec``, ``veil.codec.zfec_codec``). It also holds the input
checks both back-ends share, so that they fail with the same ``UsageError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from veil.errors import UsageError

Matrix = list[list[int]]
FrozenMatrix = tuple[tuple[int, ...], ...]

POLYNOMIAL = 0x11D
MAX_SHARES = 256

# EXP[i] = α^i for i in 0..509 (doubled so EXP[LOG[a] + LOG[b]] needs no modulo);
# LOG[a] = i with α^i = a, for a in 1..255 (LOG[0] is unused).
EXP: list[int] = [0] * 510
LOG: list[int] = [0] * 256
_x = 1
for _i in range(255):
    EXP[_i] = _x
    LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= POLYNOMIAL
for _i in range(255, 510):
    EXP[_i] = EXP[_i - 255]
del _x, _i


def mul(a: int, b: int) -> int:
    """a ⊗ b in GF(2^8)."""
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def inv(a: int) -> int:
    """The multiplicative inverse of a non-zero field element."""
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


def identity(size: int) -> Matrix:
    return [[1 if i == j else 0 for j in range(size)] for i in range(size)]


@lru_cache(maxsize=256)
def _scale_table(g: int) -> bytes:
    """``bytes.translate`` table multiplying every byte by g."""
    return bytes(mul(g, v) for v in range(256))


def _scale(row: bytes, g: int) -> bytes:
    return row.translate(_scale_table(g))


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def invert(m: Sequence[Sequence[int]]) -> Matrix:
    """Inverse of a square matrix over GF(2^8) (Gauss-Jordan elimination).

    Rows are handled as ``bytes`` (scaling with ``translate``, adding with a
    big-integer XOR), so even 256×256 takes a fraction of a second.
    """
    size = len(m)
    if any(len(row) != size for row in m):
        raise ValueError("only square matrices can be inverted")
    a = [bytes(row) + bytes(unit) for row, unit in zip(m, identity(size), strict=True)]
    for col in range(size):
        pivot = next((r for r in range(col, size) if a[r][col]), None)
        if pivot is None:
            raise ValueError("singular matrix")
        a[col], a[pivot] = a[pivot], a[col]
        a[col] = _scale(a[col], inv(a[col][col]))
        for r in range(size):
            g = a[r][col]
            if r != col and g:
                a[r] = _xor(a[r], _scale(a[col], g))
    return [list(row[size:]) for row in a]


def matmul(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]]) -> Matrix:
    """The product a × b over GF(2^8)."""
    rows_b = [bytes(row) for row in b]
    width = len(rows_b[0])
    out = []
    for row in a:
        acc = bytes(width)
        for x, brow in zip(row, rows_b, strict=True):
            if x:
                acc = _xor(acc, _scale(brow, x))
        out.append(list(acc))
    return out


def check_parameters(k: int, n: int) -> None:
    """Raise ``UsageError`` unless 1 <= k <= n <= 256 (zfec's limits)."""
    if type(k) is not int or type(n) is not int:
        raise UsageError(f"erasure coding needs whole numbers k and n, got {k!r} and {n!r}")
    if not 1 <= k <= n <= MAX_SHARES:
        raise UsageError(
            f"erasure coding needs 1 <= k <= n <= {MAX_SHARES}, got k={k} n={n}",
            hint="k is shares.needed and n is shares.total",
        )


@lru_cache(maxsize=128)
def encoding_matrix(k: int, n: int) -> FrozenMatrix:
    """zfec's n×k encoding matrix: row i gives block i from pieces 0..k-1."""
    check_parameters(k, n)
    vander: Matrix = [[1] + [0] * (k - 1)]
    for r in range(n - 1):
        vander.append([EXP[(r * c) % 255] for c in range(k)])
    enc = matmul(vander, invert(vander[:k]))
    return tuple(tuple(row) for row in enc)


@lru_cache(maxsize=512)
def decoding_matrix(k: int, n: int, share_numbers: tuple[int, ...]) -> FrozenMatrix:
    """k×k matrix turning blocks ``share_numbers`` (in that order) into pieces 0..k-1."""
    check_share_numbers(k, n, share_numbers)
    enc = encoding_matrix(k, n)
    return tuple(tuple(row) for row in invert([enc[s] for s in share_numbers]))


def check_share_numbers(k: int, n: int, share_numbers: Sequence[int]) -> None:
    """Raise ``UsageError`` unless these are k distinct share numbers in 0..n-1."""
    if len(share_numbers) != k or len(set(share_numbers)) != k:
        raise UsageError(
            f"decoding needs exactly {k} distinct share numbers, got {list(share_numbers)}"
        )
    for s in share_numbers:
        if type(s) is not int or not 0 <= s < n:
            raise UsageError(f"share number {s!r} is not in 0..{n - 1}")


def check_blocks(k: int, blocks: Sequence[bytes | memoryview], what: str) -> int:
    """Raise ``UsageError`` unless there are k equal-length blocks; return the length."""
    if len(blocks) != k:
        raise UsageError(f"erasure coding with k={k} needs {k} {what}, got {len(blocks)}")
    size = len(blocks[0])
    if any(len(b) != size for b in blocks):
        raise UsageError(f"all {what} must have the same length, got {[len(b) for b in blocks]}")
    for b in blocks:
        if isinstance(b, memoryview) and not (b.c_contiguous and b.itemsize == 1):
            raise UsageError(f"erasure coding needs contiguous byte buffers as {what}")
    return size


def segment_piece_size(k: int, segment: bytes | memoryview) -> int:
    """The piece length of a segment; raise ``UsageError`` unless k divides it."""
    size, rest = divmod(len(segment), k)
    if rest:
        raise UsageError(
            f"a segment of {len(segment)} bytes cannot be split into {k} equal pieces",
            hint="pad the segment to a multiple of k first",
        )
    return size
