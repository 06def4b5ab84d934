"""Arithmetic in the ring ``Z_(2^64)`` on numpy ``uint64`` arrays.

SecureML (Mohassel & Zhang, "SecureML: A System for Scalable Privacy-Preserving
Machine Learning", IEEE S&P 2017) computes on additive shares in ``Z_(2^l)`` with
``l = 64``. Unsigned 64-bit machine words wrap modulo ``2**64``, so numpy's
``uint64`` addition, subtraction and multiplication already are ring operations:
``a + b mod 2^64``, ``a - b mod 2^64``, ``a * b mod 2^64``.

Matrix products use numpy's integer ``matmul`` loop (no BLAS, no float conversion),
whose every multiply-add wraps modulo ``2**64``; the result is therefore the exact
ring product ``(A @ B)[i, j] = sum_k A[i, k] * B[k, j] mod 2^64``. A test checks it
against Python integers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "RING_BITS",
    "RingArray",
    "ring_add",
    "ring_from_signed",
    "ring_matmul",
    "ring_multiply",
    "ring_negate",
    "ring_subtract",
    "ring_sum",
    "ring_to_signed",
]

RING_BITS: int = 64
RingArray = NDArray[np.uint64]


def ring_add(left: RingArray, right: RingArray) -> RingArray:
    """Return ``left + right mod 2^64``.

    >>> int(ring_add(np.array([2**64 - 1], np.uint64), np.array([2], np.uint64))[0])
    1
    """
    return np.add(left, right, dtype=np.uint64)


def ring_subtract(left: RingArray, right: RingArray) -> RingArray:
    """Return ``left - right mod 2^64``.

    >>> int(ring_subtract(np.array([1], np.uint64), np.array([2], np.uint64))[0]) == 2**64 - 1
    True
    """
    return np.subtract(left, right, dtype=np.uint64)


def ring_negate(values: RingArray) -> RingArray:
    """Return ``-values mod 2^64`` (that is ``2^64 - values`` for nonzero entries).

    >>> int(ring_negate(np.array([1], np.uint64))[0]) == 2**64 - 1
    True
    """
    return np.subtract(np.zeros_like(values), values, dtype=np.uint64)


def ring_multiply(left: RingArray, right: RingArray) -> RingArray:
    """Return the elementwise product ``left * right mod 2^64``.

    >>> int(ring_multiply(np.array([2**63], np.uint64), np.array([2], np.uint64))[0])
    0
    """
    return np.multiply(left, right, dtype=np.uint64)


def ring_matmul(left: RingArray, right: RingArray) -> RingArray:
    """Return the exact matrix product ``left @ right mod 2^64``.

    Args:
        left: ``[rows, inner]`` ring matrix.
        right: ``[inner, columns]`` ring matrix.

    Returns:
        ``[rows, columns]`` ring matrix.

    >>> a = np.array([[2**63, 1]], np.uint64)
    >>> b = np.array([[2], [5]], np.uint64)
    >>> ring_matmul(a, b).tolist()
    [[5]]
    """
    product: RingArray = np.matmul(left, right, dtype=np.uint64)
    return product


def ring_sum(terms: list[RingArray]) -> RingArray:
    """Return ``sum(terms) mod 2^64`` for a non-empty list of equally shaped arrays.

    >>> ring_sum([np.array([2**63], np.uint64)] * 2).tolist()
    [0]
    """
    total = terms[0].copy()
    for term in terms[1:]:
        total = ring_add(total, term)
    return total


def ring_to_signed(values: RingArray) -> NDArray[np.int64]:
    """Return the two's complement reading of ring elements, in ``[-2^63, 2^63)``.

    >>> ring_to_signed(np.array([2**64 - 3], np.uint64)).tolist()
    [-3]
    """
    return values.view(np.int64)


def ring_from_signed(values: NDArray[np.int64]) -> RingArray:
    """Return signed 64-bit integers as ring elements (``v mod 2^64``).

    >>> ring_from_signed(np.array([-1], np.int64)).tolist() == [2**64 - 1]
    True
    """
    return values.view(np.uint64)
