"""t-out-of-n Shamir secret sharing of 32-byte secrets over a 257-bit prime field.

Shamir (1979), "How to share a secret": a secret ``s`` becomes the constant term of a
random polynomial ``f`` of degree ``t - 1`` over GF(p); share ``i`` is ``(x_i, f(x_i))``.
Any ``t`` shares give ``s = sum_i y_i * l_i(0)`` (Lagrange interpolation at 0); fewer
than ``t`` shares are independent of ``s``. The prime ``p = 2**256 + 297`` is the
smallest above ``2**256``, so every 32-byte string is a field element.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

__all__ = ["PRIME", "Share", "lagrange_coefficients", "reconstruct_secret", "split_secret"]

PRIME = 2**256 + 297
_SHARE_BYTES = 33  # field elements need 257 bits

Share = tuple[int, int]  # (x, f(x)), x >= 1


def split_secret(
    secret: bytes,
    threshold: int,
    xs: Sequence[int],
    entropy: Callable[[int], bytes],
) -> dict[int, int]:
    """Return ``{x: f(x)}`` for a random degree-``threshold - 1`` polynomial with ``f(0) = secret``.

    Args:
        secret: 32 bytes.
        threshold: shares needed to reconstruct (``1 <= threshold <= len(xs)``).
        xs: distinct non-zero evaluation points, one per shareholder.
        entropy: source of random bytes for the coefficients (``os.urandom``).

    >>> import os
    >>> shares = split_secret(bytes(range(32)), 2, [1, 2, 3], os.urandom)
    >>> reconstruct_secret({x: shares[x] for x in (1, 3)}) == bytes(range(32))
    True
    """
    coefficients = [int.from_bytes(secret, "big")]
    # 40 bytes per coefficient: reduced mod p, the bias from uniform is below 2**-60.
    coefficients += [int.from_bytes(entropy(40), "big") % PRIME for _ in range(threshold - 1)]
    top_first = coefficients[::-1]
    shares = {}
    for x in xs:
        value = 0
        for coefficient in top_first:  # Horner
            value = (value * x + coefficient) % PRIME
        shares[x] = value
    return shares


def lagrange_coefficients(xs: Sequence[int]) -> list[int]:
    """Return ``l_i(0)`` mod p for the points ``xs``, so that ``f(0) = sum_i l_i(0) f(x_i)``.

    Computing them once per set of responders makes each further reconstruction from
    the same points a dot product of ``t`` terms.
    """
    coefficients = []
    for i, xi in enumerate(xs):
        numerator = 1
        denominator = 1
        for j, xj in enumerate(xs):
            if i != j:
                numerator = numerator * xj % PRIME
                denominator = denominator * (xj - xi) % PRIME
        coefficients.append(numerator * pow(denominator, -1, PRIME) % PRIME)
    return coefficients


def reconstruct_secret(shares: Mapping[int, int], coefficients: Sequence[int] | None = None) -> bytes:
    """Return the 32-byte secret from ``shares`` ``{x: y}`` (exactly the threshold's worth or more).

    Args:
        shares: shares of one secret; all of them are used.
        coefficients: ``lagrange_coefficients(list(shares))``, if already computed.

    Raises:
        ValueError: the shares interpolate to a value that is not a 32-byte secret
            (they are inconsistent, or fewer than the threshold).
    """
    xs = list(shares)
    weights = lagrange_coefficients(xs) if coefficients is None else coefficients
    value = sum(w * shares[x] for w, x in zip(weights, xs, strict=True)) % PRIME
    if value >= 1 << 256:
        raise ValueError("shares do not interpolate to a 32-byte secret (too few or inconsistent)")
    return value.to_bytes(32, "big")


def share_to_bytes(value: int) -> bytes:
    """Return the fixed-width encoding of a share value."""
    return value.to_bytes(_SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    """Return the share value encoded by :func:`share_to_bytes`."""
    return int.from_bytes(data, "big")
