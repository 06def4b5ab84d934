"""Sigmoid approximations on fixed-point shares (Mohassel & Zhang, "SecureML", IEEE S&P 2017).

Two ways to replace ``sigmoid(x) = 1 / (1 + e^-x)`` inside MPC:

* ``secure_piecewise_sigmoid`` -- SecureML's "MPC-friendly" activation (Sec. 4.3)::

      f(x) = 0            for x < -1/2
             x + 1/2      for -1/2 <= x <= 1/2
             1            for x > 1/2

  computed as ``f = (c_low - c_high) * (x + 1/2) + c_high`` with the shared bits
  ``c_low = [x >= -1/2] = 1 - msb(x + 1/2)`` and ``c_high = [x >= 1/2] = 1 - msb(x - 1/2)``
  (both comparisons batched into one ``secure_select`` call, which also multiplies the
  integer bits by the fixed-point value without a round of its own or a truncation).
  Cost: ``MSB_ROUNDS = 5`` rounds; works for 2 or 3 parties.
  Max error versus the true sigmoid on ``[-8, 8]``: ``0.3775`` (at ``x = +-1/2``, where
  ``f`` reaches 0 or 1 while ``sigmoid(1/2) = 0.6225``); measured in the tests.

* ``secure_cubic_sigmoid`` -- the degree-3 least-squares fit on ``[-4, 4]`` (odd part
  only, since ``sigmoid(x) - 1/2`` is odd)::

      g(x) = 1/2 + 0.2166008 x - 0.0066034 x^3

  with two Beaver multiplications (``x^2``, then ``x^3``), each followed by a
  truncation: 2 rounds for two parties (local truncation), 5 for three (each of the
  three truncations opens a dealer truncation pair, one round). Max error on ``[-4, 4]``: ``0.0382``;
  on ``[-8, 8]`` the cubic term dominates and the error reaches ``2.148`` at ``x = +-8``
  (for comparison, the Taylor line ``1/2 + x/4`` errs by ``1.500`` at ``x = +-8``).
  SecureML (Sec. 4.3) reports that such polynomials train poorly for this reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from defenses.mpc.protocol.beaver import (
    MpcParty,
    TripleShare,
    TruncationPair,
    secure_multiply,
)
from defenses.mpc.protocol.comparison import SelectPreprocessing, secure_select
from defenses.mpc.protocol.fixed_point import DEFAULT_FRACTIONAL_BITS, encode_fixed
from defenses.mpc.protocol.ring import RingArray, ring_add, ring_multiply, ring_subtract
from defenses.mpc.protocol.truncation import secure_truncate

__all__ = [
    "CUBIC_SIGMOID_COEFFICIENTS",
    "cubic_sigmoid",
    "piecewise_sigmoid",
    "secure_cubic_sigmoid",
    "secure_piecewise_sigmoid",
]

CUBIC_SIGMOID_COEFFICIENTS: tuple[float, float, float] = (0.5, 0.2166008, -0.0066034)  # 1, x, x^3


def piecewise_sigmoid(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return SecureML's piecewise-linear sigmoid ``clip(x + 1/2, 0, 1)`` in plaintext.

    >>> piecewise_sigmoid(np.array([-1.0, 0.25, 2.0])).tolist()
    [0.0, 0.75, 1.0]
    """
    return np.clip(values + 0.5, 0.0, 1.0)


def cubic_sigmoid(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the degree-3 least-squares sigmoid fit ``1/2 + 0.2166 x - 0.0066 x^3`` in plaintext.

    >>> round(float(cubic_sigmoid(np.array([0.0]))[0]), 6)
    0.5
    """
    constant, linear, cubic = CUBIC_SIGMOID_COEFFICIENTS
    result: NDArray[np.float64] = constant + linear * values + cubic * values**3
    return result


def _fixed_constant(value: float, shape: tuple[int, ...], fractional_bits: int) -> RingArray:
    return encode_fixed(np.full(shape, value), fractional_bits)


def secure_piecewise_sigmoid(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    preprocessing: Sequence[SelectPreprocessing],
    *,
    fractional_bits: int = DEFAULT_FRACTIONAL_BITS,
) -> list[RingArray]:
    """Return fixed-point shares of SecureML's piecewise sigmoid of ``x``, ``MSB_ROUNDS`` (5) rounds.

    Args:
        parties: the computing parties (2 or 3).
        x_shares: fixed-point shares of ``x``, shape ``S``.
        preprocessing: ``select_preprocessing(2, S)`` from a ``ComparisonDealer``.
        fractional_bits: fixed-point precision of ``x`` and of the result.
    """
    shape = x_shares[0].shape
    half = _fixed_constant(0.5, shape, fractional_bits)
    shifted: list[RingArray] = []  # shares of v = x + 1/2
    stacked: list[RingArray] = []  # shares of [x + 1/2, x - 1/2]
    for party, x in zip(parties, x_shares, strict=True):
        if party.party_index == 0:
            stacked.append(np.stack([ring_add(x, half), ring_subtract(x, half)]))
            shifted.append(ring_add(x, half))
        else:
            stacked.append(np.stack([x, x]))
            shifted.append(x)
    signs, gated = secure_select(parties, stacked, shifted, preprocessing)
    one = _fixed_constant(1.0, shape, fractional_bits)
    results: list[RingArray] = []
    for party, g, s in zip(parties, gated, signs, strict=True):
        # (c_low - c_high) v + c_high = (msb_high - msb_low) v + (1 - msb_high) * 1
        value = ring_subtract(ring_subtract(g[1], g[0]), ring_multiply(s[1], one))
        results.append(ring_add(value, one) if party.party_index == 0 else value)
    return results


def secure_cubic_sigmoid(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    square_triples: Sequence[TripleShare],
    cube_triples: Sequence[TripleShare],
    *,
    fractional_bits: int = DEFAULT_FRACTIONAL_BITS,
    truncation_pairs: Sequence[Sequence[TruncationPair]] | None = None,
) -> list[RingArray]:
    """Return fixed-point shares of ``1/2 + 0.2166 x - 0.0066 x^3``: 2 rounds (2 parties), 5 (3 parties).

    Args:
        parties: the computing parties.
        x_shares: fixed-point shares of ``x``, shape ``S``.
        square_triples, cube_triples: two independent ``elementwise_triples(S)``.
        fractional_bits: fixed-point precision of ``x`` and of the result.
        truncation_pairs: per party, three ``truncation_pairs(S, fractional_bits)``
            shares (for ``x^2``, ``x^3`` and the scaled sum); required for three
            parties, two parties truncate locally without them.

    Raises:
        ValueError: three parties without truncation pairs.
    """

    def truncate(shares: Sequence[RingArray], which: int) -> list[RingArray]:
        pairs = None if truncation_pairs is None else [own[which] for own in truncation_pairs]
        return secure_truncate(parties, shares, fractional_bits=fractional_bits, pairs=pairs)

    shape = x_shares[0].shape
    constant, linear, cubic = (_fixed_constant(c, shape, fractional_bits) for c in CUBIC_SIGMOID_COEFFICIENTS)
    squares = truncate(secure_multiply(parties, x_shares, x_shares, square_triples), 0)
    cubes = truncate(secure_multiply(parties, squares, x_shares, cube_triples), 1)
    # Public-constant products are local; one truncation covers both terms.
    scaled = truncate(
        [ring_add(ring_multiply(x, linear), ring_multiply(c3, cubic)) for x, c3 in zip(x_shares, cubes, strict=True)],
        2,
    )
    return [ring_add(s, constant) if p.party_index == 0 else s for p, s in zip(parties, scaled, strict=True)]
