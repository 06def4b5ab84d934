"""Secure comparison (sign bit / MSB) of additively shared ring values.

Mohassel & Zhang, "SecureML: A System for Scalable Privacy-Preserving Machine
Learning", IEEE S&P 2017, Sec. 4.3, evaluate comparisons by switching from arithmetic to
boolean sharing. This module implements the dealer-assisted variant of that switch:

Offline (``ComparisonDealer``): draw a uniform ``r`` in ``Z_(2^64)``; hand out arithmetic
shares of ``r``, XOR shares of its 64 bits (packed in one ``uint64`` word per element),
boolean AND triples ``c = a & b`` for every circuit layer, and a random bit ``rho`` shared
both by XOR and arithmetically.

Online (``secure_msb``), for shares of ``x``:

1. open ``y = x + r mod 2^64`` (one round). ``y`` is uniform whatever ``x`` is.
2. ``x = y - r mod 2^64``, so by binary subtraction its top bit is
   ``msb(x) = y_63 XOR r_63 XOR [y mod 2^63 < r mod 2^63]``: the last term is the borrow
   into bit 63, which is exactly how the wrap-around of ``y = x + r`` is accounted for.
3. ``[y' < r']`` for public ``y'`` and bit-shared ``r'`` (63 bits) is a prefix circuit:
   per bit ``lt_i = ~y_i & r_i`` and ``eq_i = ~(y_i XOR r_i)`` (local, ``y`` public), then
   segments combine as ``(L, E) o (L', E') = (L XOR (E & L'), E & E')`` (the two XOR terms
   are exclusive). A Kogge-Stone log-depth prefix with strides ``1, 2, 4, ..., 32``
   needs ``ceil(log2 63) = 6`` layers of AND gates; all bits of a layer are packed into
   words and multiplied with boolean Beaver triples in one round.
4. Convert the XOR-shared bit ``b`` to arithmetic shares: open ``c = b XOR rho`` (one round)
   and set ``[b] = c + (1 - 2c) [rho]``.

Cost: ``1 + 6 + 1 = 8`` rounds (``MSB_ROUNDS``); per element and per ordered party pair
one opened ring word, 6 layers of ``2 x 2`` packed words (``e`` and ``f`` for two ANDs),
and one opened bit word. Works for 2 or 3 parties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from defenses.mpc_protocol.beaver import MpcParty
from defenses.mpc_protocol.channel import decode_ring_arrays, encode_ring_arrays
from defenses.mpc_protocol.prg import AesCtrPrg
from defenses.mpc_protocol.ring import (
    RingArray,
    ring_add,
    ring_multiply,
    ring_subtract,
    ring_sum,
)
from defenses.mpc_protocol.sharing import SUPPORTED_PARTIES, share

__all__ = [
    "CIRCUIT_LAYERS",
    "MSB_ROUNDS",
    "BitTripleShare",
    "ComparisonDealer",
    "MsbPreprocessing",
    "secure_and",
    "secure_less_than",
    "secure_msb",
    "xor_reconstruct",
    "xor_share",
]

_LOW_MASK = np.uint64(2**63 - 1)
_STRIDES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
CIRCUIT_LAYERS: int = len(_STRIDES)
MSB_ROUNDS: int = 1 + CIRCUIT_LAYERS + 1


def xor_share(secret: RingArray, parties: int, prg: AesCtrPrg) -> list[RingArray]:
    """Return ``parties`` XOR shares of the packed bit words ``secret``.

    >>> x = np.array([5, 2**64 - 1], np.uint64)
    >>> xor_reconstruct(xor_share(x, 3, AesCtrPrg(seed=bytes(32)))).tolist() == x.tolist()
    True
    """
    masks = [prg.random_ring(secret.shape) for _ in range(parties - 1)]
    last = secret.copy()
    for mask in masks:
        last ^= mask
    return [*masks, last]


def xor_reconstruct(shares: Sequence[RingArray]) -> RingArray:
    """Return the XOR of all ``shares``, the boolean-shared secret words."""
    total = shares[0].copy()
    for piece in shares[1:]:
        total ^= piece
    return total


@dataclass(frozen=True)
class BitTripleShare:
    """One party's XOR share of a boolean Beaver triple: ``c = a & b`` bitwise after reconstruction."""

    a: RingArray
    b: RingArray
    c: RingArray


@dataclass(frozen=True)
class MsbPreprocessing:
    """One party's dealer material for one ``secure_msb`` call on arrays of one shape."""

    mask: RingArray  # arithmetic share of r
    mask_bits: RingArray  # XOR share of the 64 bits of r, packed
    and_triples: tuple[BitTripleShare, ...]  # one per circuit layer, shape (2, *shape)
    bit_arithmetic: RingArray  # arithmetic share of the random bit rho
    bit_boolean: RingArray  # XOR share of rho (in bit 0)


class ComparisonDealer:
    """Offline-phase dealer for secure comparison: masks, boolean AND triples, random bits.

    Args:
        num_parties: 2 or 3.
        prg: cryptographic randomness.

    >>> dealer = ComparisonDealer(num_parties=2, prg=AesCtrPrg(seed=bytes(32)))
    >>> t = dealer.bit_triples((3,))
    >>> a, b, c = (xor_reconstruct([getattr(p, n) for p in t]) for n in "abc")
    >>> bool(((a & b) == c).all())
    True
    """

    def __init__(self, *, num_parties: int, prg: AesCtrPrg) -> None:
        if num_parties not in SUPPORTED_PARTIES:
            raise ValueError(f"num_parties must be one of {SUPPORTED_PARTIES}, got {num_parties}")
        self.num_parties = num_parties
        self._prg = prg

    def bit_triples(self, shape: tuple[int, ...]) -> list[BitTripleShare]:
        """Return per-party XOR shares of packed words ``a, b, c = a & b``."""
        a = self._prg.random_ring(shape)
        b = self._prg.random_ring(shape)
        parts = [xor_share(v, self.num_parties, self._prg) for v in (a, b, a & b)]
        return [BitTripleShare(a=sa, b=sb, c=sc) for sa, sb, sc in zip(*parts, strict=True)]

    def msb_preprocessing(self, shape: tuple[int, ...]) -> list[MsbPreprocessing]:
        """Return each party's material for one ``secure_msb`` call on arrays of ``shape``."""
        mask = self._prg.random_ring(shape)
        rho = self._prg.random_ring(shape) & np.uint64(1)
        mask_shares = share(mask, self.num_parties, self._prg)
        bit_shares = xor_share(mask, self.num_parties, self._prg)
        rho_arithmetic = share(rho, self.num_parties, self._prg)
        rho_boolean = xor_share(rho, self.num_parties, self._prg)
        layers = [self.bit_triples((2, *shape)) for _ in _STRIDES]
        return [
            MsbPreprocessing(
                mask=mask_shares[i],
                mask_bits=bit_shares[i],
                and_triples=tuple(layer[i] for layer in layers),
                bit_arithmetic=rho_arithmetic[i],
                bit_boolean=rho_boolean[i],
            )
            for i in range(self.num_parties)
        ]


def _open(parties: Sequence[MpcParty], shares: Sequence[RingArray], *, is_xor: bool) -> list[RingArray]:
    """Every party broadcasts its share (one round) and returns the opened value it computes."""
    for party, piece in zip(parties, shares, strict=True):
        payload = encode_ring_arrays([piece])
        for peer in range(party.channel.num_parties):
            if peer != party.party_index:
                party.channel.send(sender=party.party_index, receiver=peer, payload=payload)
    opened: list[RingArray] = []
    for party, piece in zip(parties, shares, strict=True):
        terms = [piece]
        for peer in range(party.channel.num_parties):
            if peer != party.party_index:
                message = party.channel.receive(receiver=party.party_index, sender=peer)
                terms.append(decode_ring_arrays(message, [piece.shape])[0])
        opened.append(xor_reconstruct(terms) if is_xor else ring_sum(terms))
    return opened


def secure_and(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    y_shares: Sequence[RingArray],
    triples: Sequence[BitTripleShare],
) -> list[RingArray]:
    """Return XOR shares of ``x & y`` (bitwise on packed words), one round.

    Boolean Beaver: open ``d = x ^ a`` and ``e = y ^ b``; party ``i`` sets
    ``z_i = c_i ^ (d & b_i) ^ (e & a_i) ^ [i == 0] (d & e)``.

    Raises:
        ValueError: if the party, share and triple counts differ.
    """
    if not len(parties) == len(x_shares) == len(y_shares) == len(triples):
        raise ValueError(
            f"need one party, x share, y share and triple each, got {len(parties)}, {len(x_shares)}, "
            f"{len(y_shares)}, {len(triples)}"
        )
    stacked = [np.stack([x ^ t.a, y ^ t.b]) for x, y, t in zip(x_shares, y_shares, triples, strict=True)]
    opened = _open(parties, stacked, is_xor=True)
    results: list[RingArray] = []
    for party, both, t in zip(parties, opened, triples, strict=True):
        d, e = both[0], both[1]
        z = t.c ^ (d & t.b) ^ (e & t.a)
        if party.party_index == 0:
            z = z ^ (d & e)
        results.append(z)
    return results


def _shift_up(words: RingArray, stride: int) -> RingArray:
    return np.left_shift(words, np.uint64(stride))


def secure_msb(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    preprocessing: Sequence[MsbPreprocessing],
) -> list[RingArray]:
    """Return arithmetic shares of the sign bit ``msb(x)`` (``1`` iff ``signed(x) < 0``), 8 rounds.

    See the module docstring for the protocol (Mohassel & Zhang, "SecureML", IEEE S&P
    2017): open ``y = x + r``, run a 6-layer log-depth comparison circuit of ``y mod 2^63``
    against the bit-shared ``r mod 2^63`` and fix the wrap-around with ``y_63 ^ r_63``.

    Raises:
        ValueError: if the party, share and preprocessing counts differ.

    >>> from defenses.mpc_protocol import Channel, reconstruct, ring_from_signed
    >>> prg = AesCtrPrg(seed=bytes(32))
    >>> channel = Channel(num_parties=2)
    >>> parties = [MpcParty(party_index=i, channel=channel) for i in range(2)]
    >>> x = ring_from_signed(np.array([-5, 0, 7], np.int64))
    >>> pre = ComparisonDealer(num_parties=2, prg=prg).msb_preprocessing((3,))
    >>> (reconstruct(secure_msb(parties, share(x, 2, prg), pre)).tolist(), channel.rounds)
    ([1, 0, 0], 8)
    """
    if not len(parties) == len(x_shares) == len(preprocessing):
        raise ValueError(
            f"need one party, x share and preprocessing each, got {len(parties)}, {len(x_shares)}, {len(preprocessing)}"
        )
    masked = [ring_add(x, pre.mask) for x, pre in zip(x_shares, preprocessing, strict=True)]
    opened = _open(parties, masked, is_xor=False)
    # Per-bit (less, equal) XOR shares of y' vs r'; y is public so these are local. The
    # public constants enter through party 0 only.
    less: list[RingArray] = []
    equal: list[RingArray] = []
    for party, y, pre in zip(parties, opened, preprocessing, strict=True):
        is_first = party.party_index == 0
        less.append(pre.mask_bits & ~y & _LOW_MASK)
        equal.append((pre.mask_bits ^ (~y if is_first else np.zeros_like(y))) & _LOW_MASK)
    for layer, stride in enumerate(_STRIDES):
        uppers = [np.stack([e, e]) for e in equal]
        lowers = [np.stack([_shift_up(lt, stride), _shift_up(e, stride)]) for lt, e in zip(less, equal, strict=True)]
        triples = [pre.and_triples[layer] for pre in preprocessing]
        gated = secure_and(parties, uppers, lowers, triples)
        less = [lt ^ g[0] for lt, g in zip(less, gated, strict=True)]
        equal = [g[1] for g in gated]
    sign_bits: list[RingArray] = []
    for party, y, lt, pre in zip(parties, opened, less, preprocessing, strict=True):
        top = (lt >> np.uint64(62)) & np.uint64(1)  # borrow into bit 63: [y' < r']
        top ^= (pre.mask_bits >> np.uint64(63)) & np.uint64(1)
        if party.party_index == 0:
            top ^= y >> np.uint64(63)
        sign_bits.append(top)
    masked_bits = [b ^ pre.bit_boolean for b, pre in zip(sign_bits, preprocessing, strict=True)]
    opened_bits = _open(parties, masked_bits, is_xor=True)
    results: list[RingArray] = []
    for party, c, pre in zip(parties, opened_bits, preprocessing, strict=True):
        # b = c XOR rho = c + (1 - 2c) rho
        scale = ring_subtract(np.ones_like(c), ring_add(c, c))
        value = ring_multiply(scale, pre.bit_arithmetic)
        if party.party_index == 0:
            value = ring_add(value, c)
        results.append(value)
    return results


def secure_less_than(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    threshold: RingArray,
    preprocessing: Sequence[MsbPreprocessing],
) -> list[RingArray]:
    """Return arithmetic shares of ``[x < threshold]`` for a public ring threshold, 8 rounds.

    Computed as ``msb(x - threshold)``; correct whenever ``signed(x) - signed(threshold)``
    lies in ``[-2^63, 2^63)``, which holds for fixed-point values well inside
    ``representable_range``.
    """
    shifted = [
        ring_subtract(x, threshold) if party.party_index == 0 else x
        for party, x in zip(parties, x_shares, strict=True)
    ]
    return secure_msb(parties, shifted, preprocessing)
