"""Secure comparison (sign bit / MSB) of additively shared ring values.

Mohassel & Zhang, "SecureML: A System for Scalable Privacy-Preserving Machine
Learning", IEEE S&P 2017, Sec. 4.3, evaluate comparisons by switching from arithmetic to
boolean sharing. This module implements the dealer-assisted variant of that switch:

Offline (``ComparisonDealer``): draw a uniform ``r`` in ``Z_(2^64)``; hand out arithmetic
shares of ``r``, XOR shares of its 64 bits (``uint8`` bit arrays, least significant bit
first), boolean AND triples ``c = a & b`` for every circuit layer, and a random bit ``rho``
shared both by XOR and arithmetically.

Online (``secure_msb``), for shares of ``x``:

1. open ``y = x + r mod 2^64`` (one round). ``y`` is uniform whatever ``x`` is.
2. ``x = y - r mod 2^64``, so by binary subtraction its top bit is
   ``msb(x) = y_63 XOR r_63 XOR [y mod 2^63 < r mod 2^63]``: the last term is the borrow
   into bit 63, which is exactly how the wrap-around of ``y = x + r`` is accounted for.
3. ``[y' < r']`` for public ``y'`` and bit-shared ``r'`` (63 bits) is a tree reduction:
   per bit ``lt_i = ~y_i & r_i`` and ``eq_i = ~(y_i XOR r_i)`` (local, ``y`` public), a
   neutral ``(0, 1)`` pads bit 63, and adjacent segments combine as
   ``(L, E)_hi o (L, E)_lo = (L_hi XOR (E_hi & L_lo), E_hi & E_lo)`` (the XOR terms are
   exclusive). Six layers halve 64 segments to one; every AND gate of a layer is
   evaluated with boolean Beaver triples in one round, and only the gates a layer needs
   are opened (two per pair, one in the last layer where ``E`` is not needed): 125 AND
   gates, 250 opened bits per comparison, sent packed eight to a byte.
4. Convert the XOR-shared bit ``b`` to arithmetic shares: open ``c = b XOR rho`` (one round,
   one bit) and set ``[b] = c + (1 - 2c) [rho]``.

Cost: ``1 + 6 + 1 = 8`` rounds (``MSB_ROUNDS``); per element and per ordered party pair
one opened ring word (8 bytes) plus 251 bits (about 31 bytes). Works for 2 or 3 parties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from defenses.mpc_protocol.beaver import MpcParty, open_shares
from defenses.mpc_protocol.channel import decode_bit_arrays, encode_bit_arrays
from defenses.mpc_protocol.prg import AesCtrPrg
from defenses.mpc_protocol.ring import (
    RingArray,
    ring_add,
    ring_multiply,
    ring_subtract,
)
from defenses.mpc_protocol.sharing import SUPPORTED_PARTIES, share

__all__ = [
    "CIRCUIT_LAYERS",
    "MSB_ROUNDS",
    "BitArray",
    "BitTripleShare",
    "ComparisonDealer",
    "MsbPreprocessing",
    "open_bits",
    "ring_to_bits",
    "secure_and",
    "secure_less_than",
    "secure_msb",
    "xor_reconstruct",
    "xor_share",
]

BitArray = NDArray[np.uint8]
_BITS = 64
CIRCUIT_LAYERS: int = 6  # log2(64) halvings of the comparison tree
MSB_ROUNDS: int = 1 + CIRCUIT_LAYERS + 1


def _layer_gate_shape(layer: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of layer ``layer``'s AND gates: two per pair of segments, one in the last layer."""
    pairs = _BITS >> (layer + 1)
    return (1 if layer == CIRCUIT_LAYERS - 1 else 2, *shape, pairs)


def ring_to_bits(words: RingArray) -> BitArray:
    """Return the 64 bits of each ring element, least significant first, as ``uint8`` ``[..., 64]``.

    >>> ring_to_bits(np.array([5], np.uint64))[0, :4].tolist()
    [1, 0, 1, 0]
    """
    little = np.ascontiguousarray(words, dtype="<u8")
    return np.unpackbits(little.view(np.uint8).reshape(*words.shape, 8), axis=-1, bitorder="little")


def xor_share(secret: BitArray, parties: int, prg: AesCtrPrg) -> list[BitArray]:
    """Return ``parties`` XOR shares of a bit array (``uint8`` of 0/1).

    >>> x = np.array([1, 0, 1], np.uint8)
    >>> xor_reconstruct(xor_share(x, 3, AesCtrPrg(seed=bytes(32)))).tolist()
    [1, 0, 1]
    """
    masks = [prg.random_bits(secret.shape) for _ in range(parties - 1)]
    last = secret.copy()
    for mask in masks:
        last ^= mask
    return [*masks, last]


def xor_reconstruct(shares: Sequence[BitArray]) -> BitArray:
    """Return the XOR of all ``shares``, the boolean-shared secret bits."""
    total = shares[0].copy()
    for piece in shares[1:]:
        total ^= piece
    return total


def open_bits(parties: Sequence[MpcParty], shares: Sequence[BitArray]) -> list[BitArray]:
    """Every party broadcasts its XOR share, packed (one round); return the bits each party opens.

    Raises:
        MalformedMessageError: if a peer's message is missing, truncated or mis-shaped.
    """
    for party, piece in zip(parties, shares, strict=True):
        payload = encode_bit_arrays([piece])
        for peer in party.peers():
            party.channel.send(sender=party.party_index, receiver=peer, payload=payload)
    opened: list[BitArray] = []
    for party, piece in zip(parties, shares, strict=True):
        terms = [piece]
        for peer in party.peers():
            message = party.channel.receive(receiver=party.party_index, sender=peer)
            terms.append(decode_bit_arrays(message, [piece.shape])[0])
        opened.append(xor_reconstruct(terms))
    return opened


@dataclass(frozen=True)
class BitTripleShare:
    """One party's XOR share of a boolean Beaver triple: ``c = a & b`` after reconstruction."""

    a: BitArray
    b: BitArray
    c: BitArray


@dataclass(frozen=True)
class MsbPreprocessing:
    """One party's dealer material for one ``secure_msb`` call on arrays of one shape."""

    mask: RingArray  # arithmetic share of r
    mask_bits: BitArray  # XOR share of the 64 bits of r, [..., 64]
    and_triples: tuple[BitTripleShare, ...]  # one per circuit layer
    bit_arithmetic: RingArray  # arithmetic share of the random bit rho
    bit_boolean: BitArray  # XOR share of rho


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
        """Return per-party XOR shares of bit arrays ``a, b, c = a & b``."""
        a = self._prg.random_bits(shape)
        b = self._prg.random_bits(shape)
        parts = [xor_share(v, self.num_parties, self._prg) for v in (a, b, a & b)]
        return [BitTripleShare(a=sa, b=sb, c=sc) for sa, sb, sc in zip(*parts, strict=True)]

    def msb_preprocessing(self, shape: tuple[int, ...]) -> list[MsbPreprocessing]:
        """Return each party's material for one ``secure_msb`` call on arrays of ``shape``."""
        mask = self._prg.random_ring(shape)
        rho = self._prg.random_bits(shape)
        mask_shares = share(mask, self.num_parties, self._prg)
        bit_shares = xor_share(ring_to_bits(mask), self.num_parties, self._prg)
        rho_arithmetic = share(rho.astype(np.uint64), self.num_parties, self._prg)
        rho_boolean = xor_share(rho, self.num_parties, self._prg)
        layers = [self.bit_triples(_layer_gate_shape(layer, shape)) for layer in range(CIRCUIT_LAYERS)]
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


def secure_and(
    parties: Sequence[MpcParty],
    x_shares: Sequence[BitArray],
    y_shares: Sequence[BitArray],
    triples: Sequence[BitTripleShare],
) -> list[BitArray]:
    """Return XOR shares of ``x & y`` for XOR-shared bit arrays, one round.

    Boolean Beaver: open ``d = x ^ a`` and ``e = y ^ b``; party ``i`` sets
    ``z_i = c_i ^ (d & b_i) ^ (e & a_i) ^ [i == 0] (d & e)``.

    Raises:
        ValueError: if the party, share and triple counts differ, or shapes do not match.
    """
    if not len(parties) == len(x_shares) == len(y_shares) == len(triples):
        raise ValueError(
            f"need one party, x share, y share and triple each, got {len(parties)}, {len(x_shares)}, "
            f"{len(y_shares)}, {len(triples)}"
        )
    for x, y, t in zip(x_shares, y_shares, triples, strict=True):
        if not x.shape == y.shape == t.a.shape:
            raise ValueError(f"operand shapes {x.shape}, {y.shape} do not match the triple's {t.a.shape}")
    stacked = [np.stack([x ^ t.a, y ^ t.b]) for x, y, t in zip(x_shares, y_shares, triples, strict=True)]
    opened = open_bits(parties, stacked)
    results: list[BitArray] = []
    for party, both, t in zip(parties, opened, triples, strict=True):
        d, e = both[0], both[1]
        z = t.c ^ (d & t.b) ^ (e & t.a)
        if party.party_index == 0:
            z = z ^ (d & e)
        results.append(z)
    return results


def secure_msb(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    preprocessing: Sequence[MsbPreprocessing],
) -> list[RingArray]:
    """Return arithmetic shares of the sign bit ``msb(x)`` (``1`` iff ``signed(x) < 0``), 8 rounds.

    See the module docstring for the protocol (Mohassel & Zhang, "SecureML", IEEE S&P
    2017): open ``y = x + r``, reduce the comparison of ``y mod 2^63`` against the
    bit-shared ``r mod 2^63`` in a 6-layer tree and fix the wrap-around with ``y_63 ^ r_63``.

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
    opened = open_shares(parties, masked)
    # Per-bit (less, equal) XOR shares of y' vs r' for bits 0..62; y is public so these are
    # local. Public constants enter through party 0 only; bit 63 is the neutral (0, 1).
    less: list[BitArray] = []
    equal: list[BitArray] = []
    for party, y, pre in zip(parties, opened, preprocessing, strict=True):
        y_bits = ring_to_bits(y)
        is_first = np.uint8(party.party_index == 0)
        lt = pre.mask_bits & (1 - y_bits)
        eq = pre.mask_bits ^ (y_bits ^ np.uint8(1)) * is_first
        lt[..., -1] = 0
        eq[..., -1] = is_first
        less.append(lt)
        equal.append(eq)
    for layer in range(CIRCUIT_LAYERS):
        last = layer == CIRCUIT_LAYERS - 1
        triples = [pre.and_triples[layer] for pre in preprocessing]
        if last:
            lefts = [e[None, ..., 1::2] for e in equal]
            rights = [lt[None, ..., 0::2] for lt in less]
        else:
            lefts = [np.stack([e[..., 1::2], e[..., 1::2]]) for e in equal]
            rights = [np.stack([lt[..., 0::2], e[..., 0::2]]) for lt, e in zip(less, equal, strict=True)]
        gated = secure_and(parties, lefts, rights, triples)
        less = [lt[..., 1::2] ^ g[0] for lt, g in zip(less, gated, strict=True)]
        equal = [g[1] if not last else g[0] for g in gated]
    sign_bits: list[BitArray] = []
    for party, y, lt, pre in zip(parties, opened, less, preprocessing, strict=True):
        top = lt[..., 0] ^ pre.mask_bits[..., 63]  # borrow into bit 63, XOR r_63
        if party.party_index == 0:
            top = top ^ (y >> np.uint64(63)).astype(np.uint8)
        sign_bits.append(top)
    opened_bits = open_bits(parties, [b ^ pre.bit_boolean for b, pre in zip(sign_bits, preprocessing, strict=True)])
    results: list[RingArray] = []
    for party, c_bits, pre in zip(parties, opened_bits, preprocessing, strict=True):
        # b = c XOR rho = c + (1 - 2c) rho
        c = c_bits.astype(np.uint64)
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
