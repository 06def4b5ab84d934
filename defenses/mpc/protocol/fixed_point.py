"""Fixed-point encoding of reals into ``Z_(2^64)`` and SecureML local truncation.

A real ``v`` is encoded as the two's complement ring element
``round(v * 2^f) mod 2^64`` with ``f = fractional_bits``; decoding reads the element as
a signed integer ``z`` in ``[-2^63, 2^63)`` and returns ``z / 2^f``. Representable reals
are ``[-2^(63-f), 2^(63-f))``; anything outside raises instead of wrapping.

The product of two encodings carries ``2f`` fractional bits, so it is truncated by
``f`` bits. SecureML (Mohassel & Zhang, IEEE S&P 2017, Theorem 1) lets two parties do
this locally on their shares ``z = z_0 + z_1 mod 2^64``:

* party 0: ``z_0' = z_0 >> f`` (arithmetic shift of the signed reading),
* party 1: ``z_1' = -((-z_1) >> f)``.

If ``|z| < 2^(l_x)`` and ``z_0`` is uniform, then with probability at least
``1 - 2^(l_x + 1 - 64)`` the shares do not wrap around as signed integers, and then
``floor(z_0 / 2^f) + ceil(z_1 / 2^f)`` lies strictly between ``z / 2^f - 1`` and
``z / 2^f + 1``: the result is ``floor(z / 2^f)`` or that plus one (off by at most 1 in
the last bit). With the remaining probability the result is wrong by about ``2^(64-f)``.

For three parties this local trick is not sound: the sum of three independently
floored shares can also carry across a wrap with constant probability when two shares
are uniform, and the error is not bounded by one unit. Three parties truncate with a
dealer-supplied truncation pair (``r``, ``r >> f``) as in ABY3 instead
(``defenses.mpc.protocol.truncation.secure_truncate``), so ``truncate_share`` raises for
``num_parties != 2``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from defenses.mpc.protocol.ring import (
    RingArray,
    ring_from_signed,
    ring_negate,
    ring_to_signed,
)

__all__ = [
    "DEFAULT_FRACTIONAL_BITS",
    "decode_fixed",
    "encode_fixed",
    "representable_range",
    "truncate_share",
]

DEFAULT_FRACTIONAL_BITS: int = 16
_SIGNED_LIMIT = 2.0**63  # exactly representable as a float64


def _check_fractional_bits(fractional_bits: int) -> None:
    if not 0 <= fractional_bits <= 62:
        raise ValueError(f"fractional_bits must be in [0, 62], got {fractional_bits}")


def representable_range(fractional_bits: int = DEFAULT_FRACTIONAL_BITS) -> tuple[float, float]:
    """Return ``(low, high)``: reals in ``[low, high)`` encode without wrapping.

    >>> representable_range(16) == (-2.0**47, 2.0**47)
    True
    """
    _check_fractional_bits(fractional_bits)
    half_width = 2.0 ** (63 - fractional_bits)
    return -half_width, half_width


def encode_fixed(
    values: NDArray[np.floating], fractional_bits: int = DEFAULT_FRACTIONAL_BITS
) -> RingArray:
    """Return ``round(values * 2^f) mod 2^64`` as two's complement ring elements.

    Args:
        values: real array of any shape.
        fractional_bits: ``f``, the number of bits after the binary point.

    Raises:
        ValueError: if a value is not finite or lies outside ``representable_range(f)``.

    >>> encode_fixed(np.array([1.5, -1.0]), 2).tolist() == [6, 2**64 - 4]
    True
    """
    _check_fractional_bits(fractional_bits)
    reals = np.asarray(values, dtype=np.float64)
    scaled = np.rint(reals * 2.0**fractional_bits)
    is_bad = ~np.isfinite(scaled) | (scaled < -_SIGNED_LIMIT) | (scaled >= _SIGNED_LIMIT)
    if is_bad.any():
        low, high = representable_range(fractional_bits)
        worst = reals[is_bad].flat[0]
        raise ValueError(
            f"value {worst!r} cannot be encoded with fractional_bits={fractional_bits}: "
            f"values must be finite and in [{low:g}, {high:g})"
        )
    return ring_from_signed(scaled.astype(np.int64))


def decode_fixed(
    encoded: RingArray, fractional_bits: int = DEFAULT_FRACTIONAL_BITS
) -> NDArray[np.float64]:
    """Return ``signed(encoded) / 2^f`` as float64.

    >>> decode_fixed(encode_fixed(np.array([-2.25]), 16), 16).tolist()
    [-2.25]
    """
    _check_fractional_bits(fractional_bits)
    return ring_to_signed(encoded).astype(np.float64) / 2.0**fractional_bits


def truncate_share(
    share: RingArray,
    *,
    party_index: int,
    num_parties: int,
    fractional_bits: int = DEFAULT_FRACTIONAL_BITS,
) -> RingArray:
    """Return this party's share of ``z / 2^f`` by SecureML local truncation (no communication).

    Party 0 returns ``z_0 >> f``; party 1 returns ``-((-z_1) >> f)``, shifts being
    arithmetic on the signed reading. See the module docstring for the error bound.

    Raises:
        ValueError: if ``num_parties != 2`` (local truncation is unsound for three
            parties) or ``party_index`` is not 0 or 1.

    >>> z = encode_fixed(np.array([3.0]), 32)  # 3.0 with 2f = 32 fractional bits
    >>> shares = [np.array([2**62], np.uint64), z - np.uint64(2**62)]
    >>> t = [truncate_share(s, party_index=i, num_parties=2) for i, s in enumerate(shares)]
    >>> abs(float(decode_fixed(t[0] + t[1], 16)[0]) - 3.0) <= 2.0**-16
    True
    """
    if num_parties != 2:
        raise ValueError(
            f"local truncation is only sound for num_parties=2, got {num_parties}; "
            "three parties need a dealer truncation pair (secure_truncate)"
        )
    if party_index not in (0, 1):
        raise ValueError(f"party_index must be 0 or 1, got {party_index}")
    _check_fractional_bits(fractional_bits)
    if party_index == 0:
        return ring_from_signed(ring_to_signed(share) >> fractional_bits)
    return ring_negate(ring_from_signed(ring_to_signed(ring_negate(share)) >> fractional_bits))
