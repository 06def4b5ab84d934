"""Truncation of fixed-point products on shares, for two or three parties.

A product of two encodings carries ``2f`` fractional bits and must be shifted right by
``f``. Two ways:

* **Local** (two parties only): SecureML's Theorem 1 (``truncate_share``), no
  communication.
* **Truncation pair** (any number of parties; Mohassel & Rindal, "ABY3", CCS 2018,
  Sec. 5.1.2, for additive shares): the dealer hands out shares of a uniform ``r`` and of
  ``r' = ceil(signed(r) / 2^f)``. The parties open ``c = z - r`` (one round; ``c`` is
  uniform whatever ``z`` is) and set ``[z / 2^f] = floor(signed(c) / 2^f) + [r']``, the
  public term added by party 0 only. When ``signed(c) + signed(r)`` does not overflow,
  which fails with probability at most ``2^(l_x + 1 - 64)`` for ``|z| < 2^(l_x)``, the
  result lies strictly within one unit of ``z / 2^f``: the same bound as local truncation.

``secure_truncate`` picks local truncation when it is sound and no pairs are given.
"""

from __future__ import annotations

from collections.abc import Sequence

from defenses.mpc.protocol.beaver import MpcParty, TruncationPair, open_shares
from defenses.mpc.protocol.fixed_point import truncate_share
from defenses.mpc.protocol.ring import (
    RingArray,
    ring_add,
    ring_from_signed,
    ring_subtract,
    ring_to_signed,
)

__all__ = ["secure_truncate"]


def secure_truncate(
    parties: Sequence[MpcParty],
    shares: Sequence[RingArray],
    *,
    fractional_bits: int,
    pairs: Sequence[TruncationPair] | None = None,
) -> list[RingArray]:
    """Return shares of ``z >> fractional_bits`` (error at most one unit in the last place).

    Args:
        parties: the computing parties.
        shares: their shares of ``z``.
        fractional_bits: how many bits to drop.
        pairs: one ``TrustedDealer.truncation_pairs`` share per party (one round); when
            ``None``, two parties truncate locally (no communication).

    Raises:
        ValueError: three parties without pairs, or counts or shapes that do not match.

    >>> import numpy as np
    >>> from defenses.mpc.protocol import AesCtrPrg, Channel, TrustedDealer, decode_fixed, encode_fixed
    >>> from defenses.mpc.protocol import reconstruct, share
    >>> prg = AesCtrPrg(seed=bytes(32))
    >>> channel = Channel(num_parties=3)
    >>> parties = [MpcParty(party_index=i, channel=channel) for i in range(3)]
    >>> z = encode_fixed(np.array([-2.5, 3.25]), 32)
    >>> pairs = TrustedDealer(num_parties=3, prg=prg).truncation_pairs((2,), 16)
    >>> out = secure_truncate(parties, share(z, 3, prg), fractional_bits=16, pairs=pairs)
    >>> np.abs(decode_fixed(reconstruct(out), 16) - [-2.5, 3.25]).max() <= 2.0**-16, channel.rounds
    (np.True_, 1)
    """
    if len(parties) != len(shares):
        raise ValueError(f"need one share per party, got {len(shares)} for {len(parties)} parties")
    if pairs is None:
        if len(parties) != 2:
            raise ValueError(
                f"{len(parties)} parties cannot truncate locally; pass dealer truncation pairs"
            )
        return [
            truncate_share(s, party_index=p.party_index, num_parties=2, fractional_bits=fractional_bits)
            for p, s in zip(parties, shares, strict=True)
        ]
    if len(pairs) != len(parties):
        raise ValueError(f"need one truncation pair per party, got {len(pairs)} for {len(parties)} parties")
    for s, pair in zip(shares, pairs, strict=True):
        if s.shape != pair.mask.shape:
            raise ValueError(f"share shape {s.shape} does not match the truncation pair's {pair.mask.shape}")
    opened = open_shares(parties, [ring_subtract(s, pair.mask) for s, pair in zip(shares, pairs, strict=True)])
    results: list[RingArray] = []
    for party, c, pair in zip(parties, opened, pairs, strict=True):
        if party.party_index == 0:
            results.append(ring_add(ring_from_signed(ring_to_signed(c) >> fractional_bits), pair.shifted))
        else:
            results.append(pair.shifted.copy())
    return results
