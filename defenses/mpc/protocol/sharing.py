"""Additive secret sharing over ``Z_(2^64)`` among 2 or 3 parties.

A secret ``x`` is split as ``x = x_0 + x_1 + ... + x_{n-1} mod 2^64`` where
``x_0, ..., x_{n-2}`` are uniform PRG output and ``x_{n-1} = x - sum(others)``
(Mohassel & Zhang, "SecureML", IEEE S&P 2017, Sec. 2.2). Any ``n - 1`` shares are
jointly uniform and independent of ``x``; all ``n`` reconstruct it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from defenses.mpc.protocol.prg import AesCtrPrg
from defenses.mpc.protocol.ring import RingArray, ring_subtract, ring_sum

__all__ = ["SUPPORTED_PARTIES", "reconstruct", "share"]

SUPPORTED_PARTIES: tuple[int, ...] = (2, 3)


def _check_party_count(name: str, value: int) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is a supported number of parties.

    The protocol package imports only numpy and ``cryptography``, never the framework, so
    it keeps this one check instead of using ``leakage.checks``; the configured entry
    point (the ``mpc parties`` option) uses that.
    """
    if value not in SUPPORTED_PARTIES:
        raise ValueError(f"{name} must be one of {', '.join(map(str, SUPPORTED_PARTIES))}, got {value!r}")


def share(secret: RingArray, parties: int, prg: AesCtrPrg) -> list[RingArray]:
    """Return ``parties`` additive shares of ``secret`` that sum to it modulo ``2^64``.

    Args:
        secret: ``uint64`` array of any shape.
        parties: number of shares, 2 or 3.
        prg: cryptographic source of the uniform masks.

    Raises:
        ValueError: on an unsupported party count or a non-``uint64`` secret.

    >>> x = np.array([7, 2**64 - 1], np.uint64)
    >>> reconstruct(share(x, 3, AesCtrPrg(seed=bytes(32)))).tolist() == x.tolist()
    True
    """
    _check_party_count("parties", parties)
    if secret.dtype != np.uint64:
        raise ValueError(f"secret must be a uint64 ring array, got dtype {secret.dtype}")
    masks = [prg.random_ring(secret.shape) for _ in range(parties - 1)]
    return [*masks, ring_subtract(secret, ring_sum(masks))]


def reconstruct(shares: Sequence[RingArray]) -> RingArray:
    """Return ``sum(shares) mod 2^64``, the shared secret.

    Raises:
        ValueError: if there are no shares or their shapes differ.

    >>> reconstruct([np.array([2**63], np.uint64), np.array([2**63 + 5], np.uint64)]).tolist()
    [5]
    """
    if not shares:
        raise ValueError("reconstruct needs at least one share, got none")
    shapes = {s.shape for s in shares}
    if len(shapes) != 1:
        raise ValueError(f"shares must all have one shape, got {sorted(shapes)}")
    return ring_sum(list(shares))
