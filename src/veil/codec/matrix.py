"""GF(2^8) arithmetic and zfec's encoding matrix (digest §3.3). Pure Python.

Field: polynomial x^8+x^4+x^3+x^2+1 (0x11D), generator 2 — the same field as
zfec and ISA-L. zfec's N×k encoding matrix is ``V · inverse(V[0:k])`` where
row 0 of the Vandermonde matrix V is ``[1, 0, …, 0]`` and row ``r+1`` is
``[α^(r·c mod 255) for c in 0..k-1]``; its top k rows are the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from veil.errors import UsageError

Matrix = list[list[int]]

EXP = [0] * 512
LOG = [0] * 256
_x = 1
for _i in range(255):
    EXP[_i] = _x
    LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 512):
    EXP[_i] = EXP[_i - 255]


def mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


def invert(m: Matrix) -> Matrix:
    """Inverse of a square matrix over GF(2^8) (Gauss-Jordan)."""
    n = len(m)
    a = [row[:] + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(m)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col]), None)
        if pivot is None:
            raise ValueError("singular matrix")
        a[col], a[pivot] = a[pivot], a[col]
        f = inv(a[col][col])
        a[col] = [mul(f, v) for v in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                g = a[r][col]
                a[r] = [v ^ mul(g, w) for v, w in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


def matmul(a: Matrix, b: Matrix) -> Matrix:
    out = []
    for row in a:
        acc = [0] * len(b[0])
        for x, brow in zip(row, b, strict=True):
            if x:
                acc = [v ^ mul(x, w) for v, w in zip(acc, brow, strict=True)]
        out.append(acc)
    return out


def check_parameters(k: int, n: int) -> None:
    if not 1 <= k <= n <= 256:
        raise UsageError(f"erasure coding needs 1 <= k <= n <= 256, got k={k} n={n}")


@lru_cache(maxsize=64)
def encoding_matrix(k: int, n: int) -> tuple[tuple[int, ...], ...]:
    """zfec's n×k encoding matrix."""
    check_parameters(k, n)
    vander: Matrix = [[1] + [0] * (k - 1)]
    for r in range(n - 1):
        vander.append([EXP[(r * c) % 255] for c in range(k)])
    enc = matmul(vander, invert(vander[:k]))
    return tuple(tuple(row) for row in enc)


@lru_cache(maxsize=256)
def decoding_matrix(k: int, n: int, share_numbers: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """k×k matrix turning blocks ``share_numbers`` (in that order) into pieces 0..k-1."""
    enc = encoding_matrix(k, n)
    sub = [list(enc[s]) for s in share_numbers]
    return tuple(tuple(row) for row in invert(sub))


def validate_share_numbers(k: int, n: int, share_numbers: Sequence[int]) -> None:
    if len(share_numbers) != k or len(set(share_numbers)) != k:
        raise UsageError(f"decoding needs exactly {k} distinct share numbers")
    if any(not 0 <= s < n for s in share_numbers):
        raise UsageError(f"share numbers must be in 0..{n - 1}")
