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
   neutral ``(0, 1)`` pads bit 63, and four adjacent segments ``3 > 2 > 1 > 0`` combine
   into one as::

       L = L3 ^ E3 L2 ^ E3 E2 L1 ^ E3 E2 E1 L0        E = E3 E2 E1 E0

   (the XOR terms are exclusive). Three layers reduce 64 segments to 16, 4 and 1. A
   layer is one round: the parties open every input masked by a dealer bit,
   ``d_j = x_j ^ a_j``, and expand each monomial ``prod_(j in M) (d_j ^ a_j)`` as the XOR
   over ``T`` in ``M`` of ``prod_(j in M - T) d_j & a_T``, for which the dealer shares
   the products ``a_T`` of every subset of every monomial (multi-fan-in AND gates:
   seven opened bits per group of four instead of twelve, and half the rounds of a
   binary tree). ``T`` empty contributes the public ``prod_M d_j`` through party 0.
4. Convert the XOR-shared bit ``b`` to arithmetic shares: open ``c = b XOR rho`` (one round,
   one bit) and set ``[b] = c + (1 - 2c) [rho]``.

Cost: ``1 + 3 + 1 = 5`` rounds (``MSB_ROUNDS``); per element and per ordered party pair
one opened ring word (8 bytes) plus ``7 * (16 + 4 + 1) + 1 = 148`` bits (19 bytes).
Works for 2 or 3 parties. ``secure_select`` multiplies the result by a shared value
without another round (``SelectPreprocessing``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from defenses.mpc.protocol.beaver import (
    MpcParty,
    broadcast,
    open_share_arrays,
    open_shares,
)
from defenses.mpc.protocol.channel import decode_bit_arrays, encode_bit_arrays
from defenses.mpc.protocol.prg import AesCtrPrg
from defenses.mpc.protocol.ring import (
    RingArray,
    ring_add,
    ring_multiply,
    ring_subtract,
)
from defenses.mpc.protocol.sharing import _check_party_count, share

__all__ = [
    "CIRCUIT_LAYERS",
    "MSB_ROUNDS",
    "PRODUCT_SUBSETS",
    "BitArray",
    "BitTripleShare",
    "ComparisonDealer",
    "GateLayerShare",
    "MsbPreprocessing",
    "SelectPreprocessing",
    "msb_from_opened",
    "open_bits",
    "ring_to_bits",
    "secure_and",
    "secure_less_than",
    "secure_msb",
    "secure_select",
    "xor_reconstruct",
    "xor_share",
]

BitArray = NDArray[np.uint8]
_BITS = 64
_FAN_IN = 4
CIRCUIT_LAYERS: int = 3  # log4(64) reductions of the comparison tree
MSB_ROUNDS: int = 1 + CIRCUIT_LAYERS + 1
# Inputs of one group of four segments (3 is the most significant): E3, E2, E1, E0, L2, L1, L0.
_E3, _E2, _E1, _E0, _L2, _L1, _L0 = range(7)
_GROUP_INPUTS = 7
_L_MONOMIALS: tuple[tuple[int, ...], ...] = ((_E3, _L2), (_E3, _E2, _L1), (_E3, _E2, _E1, _L0))
_E_MONOMIAL: tuple[int, ...] = (_E3, _E2, _E1, _E0)


def _subsets(monomial: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every subset of ``monomial`` with at least two inputs, in a fixed order."""
    found = []
    for size in range(2, len(monomial) + 1):
        found += list(itertools.combinations(monomial, size))
    return found


PRODUCT_SUBSETS: tuple[tuple[int, ...], ...] = tuple(
    dict.fromkeys(t for m in (*_L_MONOMIALS, _E_MONOMIAL) for t in _subsets(m))
)
_PRODUCT_INDEX = {subset: k for k, subset in enumerate(PRODUCT_SUBSETS)}


def _layer_groups(layer: int) -> int:
    return int(_BITS // _FAN_IN ** (layer + 1))


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
    received = broadcast(parties, [encode_bit_arrays([piece]) for piece in shares])
    return [
        xor_reconstruct([piece, *(decode_bit_arrays(message, [piece.shape])[0] for message in messages)])
        for piece, messages in zip(shares, received, strict=True)
    ]


@dataclass(frozen=True)
class BitTripleShare:
    """One party's XOR share of a boolean Beaver triple: ``c = a & b`` after reconstruction."""

    a: BitArray
    b: BitArray
    c: BitArray


@dataclass(frozen=True)
class GateLayerShare:
    """One party's XOR shares of one tree layer's multi-fan-in AND material.

    ``masks``: the input masks ``a_j``, ``[..., groups, 7]``; ``products``: the products
    ``a_T`` of every subset ``T`` in ``PRODUCT_SUBSETS``, ``[..., groups, 22]``;
    ``terms``: the same shares laid out per term of the monomial expansion (the constant
    1 held by party 0, a mask or a product), ``[..., groups, 44]``, arranged offline.
    """

    masks: BitArray
    products: BitArray
    terms: BitArray


@dataclass(frozen=True)
class MsbPreprocessing:
    """One party's dealer material for one ``secure_msb`` call on arrays of one shape."""

    mask: RingArray  # arithmetic share of r
    mask_bits: BitArray  # XOR share of the 64 bits of r, [..., 64]
    layers: tuple[GateLayerShare, ...]  # one per circuit layer
    bit_arithmetic: RingArray  # arithmetic share of the random bit rho
    bit_boolean: BitArray  # XOR share of rho


@dataclass(frozen=True)
class SelectPreprocessing:
    """One party's material for ``secure_select``: an MSB call plus a mask for the multiplied value.

    ``value_mask`` shares a uniform ``B`` shaped like the value ``v``; ``bit_mask_products``
    shares ``rho * B`` for each compared row (``[k, ...]``, ``rho`` the MSB call's random bits).
    """

    msb: MsbPreprocessing
    value_mask: RingArray
    bit_mask_products: RingArray


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
        _check_party_count("num_parties", num_parties)
        self.num_parties = num_parties
        self._prg = prg

    def bit_triples(self, shape: tuple[int, ...]) -> list[BitTripleShare]:
        """Return per-party XOR shares of bit arrays ``a, b, c = a & b``."""
        a = self._prg.random_bits(shape)
        b = self._prg.random_bits(shape)
        parts = [xor_share(v, self.num_parties, self._prg) for v in (a, b, a & b)]
        return [BitTripleShare(a=sa, b=sb, c=sc) for sa, sb, sc in zip(*parts, strict=True)]

    def gate_layer(self, shape: tuple[int, ...]) -> list[GateLayerShare]:
        """Return per-party multi-fan-in AND material for groups of ``shape`` (``[..., groups]``)."""
        masks = self._prg.random_bits((*shape, _GROUP_INPUTS))
        packed = np.packbits(masks, axis=-1, bitorder="little")[..., 0]
        products = ((packed[..., None] & _PRODUCT_MASKS) == _PRODUCT_MASKS).astype(np.uint8)
        mask_shares = xor_share(masks, self.num_parties, self._prg)
        product_shares = xor_share(products, self.num_parties, self._prg)
        layers = []
        for i, (m, p) in enumerate(zip(mask_shares, product_shares, strict=True)):
            constant = np.full((*shape, 1), 1 if i == 0 else 0, np.uint8)
            terms = np.concatenate([constant, m, p], axis=-1)[..., _TERM_SHARE_INDEX]
            layers.append(GateLayerShare(masks=m, products=p, terms=terms))
        return layers

    def _msb_with_rho(self, shape: tuple[int, ...]) -> tuple[list[MsbPreprocessing], BitArray]:
        mask = self._prg.random_ring(shape)
        rho = self._prg.random_bits(shape)
        mask_shares = share(mask, self.num_parties, self._prg)
        bit_shares = xor_share(ring_to_bits(mask), self.num_parties, self._prg)
        rho_arithmetic = share(rho.astype(np.uint64), self.num_parties, self._prg)
        rho_boolean = xor_share(rho, self.num_parties, self._prg)
        layers = [self.gate_layer((*shape, _layer_groups(layer))) for layer in range(CIRCUIT_LAYERS)]
        material = [
            MsbPreprocessing(
                mask=mask_shares[i],
                mask_bits=bit_shares[i],
                layers=tuple(layer[i] for layer in layers),
                bit_arithmetic=rho_arithmetic[i],
                bit_boolean=rho_boolean[i],
            )
            for i in range(self.num_parties)
        ]
        return material, rho

    def msb_preprocessing(self, shape: tuple[int, ...]) -> list[MsbPreprocessing]:
        """Return each party's material for one ``secure_msb`` call on arrays of ``shape``."""
        return self._msb_with_rho(shape)[0]

    def select_preprocessing(self, compared: int, shape: tuple[int, ...]) -> list[SelectPreprocessing]:
        """Return each party's material for ``secure_select`` of ``compared`` rows of ``shape``."""
        msb, rho = self._msb_with_rho((compared, *shape))
        value_mask = self._prg.random_ring(shape)
        products = ring_multiply(rho.astype(np.uint64), value_mask[None])
        masks = share(value_mask, self.num_parties, self._prg)
        product_shares = share(products, self.num_parties, self._prg)
        return [
            SelectPreprocessing(msb=m, value_mask=v, bit_mask_products=p)
            for m, v, p in zip(msb, masks, product_shares, strict=True)
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


def _expansion_tables() -> tuple[NDArray[np.uint8], NDArray[np.intp], NDArray[np.intp]]:
    """Per term ``(monomial M, subset T)``: the bit mask of ``M - T``, the index of ``a_T``, and monomial starts.

    ``a_T`` is looked up in ``[1, a_0 .. a_6, products...]``: the constant first (party 0
    holds 1), then the seven input masks, then ``PRODUCT_SUBSETS``.
    """
    public_masks: list[int] = []
    share_index: list[int] = []
    starts: list[int] = []
    for monomial in (*_L_MONOMIALS, _E_MONOMIAL):
        starts.append(len(share_index))
        for size in range(len(monomial) + 1):
            for subset in itertools.combinations(monomial, size):
                public_masks.append(sum(1 << j for j in monomial if j not in subset))
                if size == 0:
                    share_index.append(0)
                elif size == 1:
                    share_index.append(1 + subset[0])
                else:
                    share_index.append(1 + _GROUP_INPUTS + _PRODUCT_INDEX[subset])
    return np.array(public_masks, np.uint8), np.array(share_index, np.intp), np.array(starts, np.intp)


_TERM_PUBLIC_MASKS, _TERM_SHARE_INDEX, _MONOMIAL_STARTS = _expansion_tables()
_PRODUCT_MASKS = np.array([sum(1 << j for j in subset) for subset in PRODUCT_SUBSETS], np.uint8)
# Row v: for 7 opened bits packed into v, the product of the opened bits of each term's M - T.
_PUBLIC_PRODUCTS = (
    (np.arange(2**_GROUP_INPUTS, dtype=np.uint8)[:, None] & _TERM_PUBLIC_MASKS) == _TERM_PUBLIC_MASKS
).astype(np.uint8)


def _expand_monomials(opened: BitArray, gates: GateLayerShare) -> BitArray:
    """This party's XOR shares of the four monomials of every group, ``[..., groups, 4]``.

    From the opened ``d = x ^ a``, ``prod_(j in M) x_j = prod_j (d_j ^ a_j)`` is the XOR
    over subsets ``T`` of ``M`` of ``prod_(j in M - T) d_j & a_T``: all 44 terms of the
    four monomials are evaluated at once and XOR-reduced per monomial.
    """
    public = _PUBLIC_PRODUCTS[np.packbits(opened, axis=-1, bitorder="little")[..., 0]]
    result: BitArray = np.bitwise_xor.reduceat(public & gates.terms, _MONOMIAL_STARTS, axis=-1)
    return result


def _gate_layer(
    parties: Sequence[MpcParty], less: Sequence[BitArray], equal: Sequence[BitArray], layer: Sequence[GateLayerShare]
) -> tuple[list[BitArray], list[BitArray]]:
    """Reduce groups of four (less, equal) segments to one, one round (see the module docstring)."""
    tops: list[BitArray] = []
    inputs: list[BitArray] = []
    for lt, eq in zip(less, equal, strict=True):
        lt4 = lt.reshape(*lt.shape[:-1], -1, _FAN_IN)
        eq4 = eq.reshape(*eq.shape[:-1], -1, _FAN_IN)
        order = [eq4[..., 3], eq4[..., 2], eq4[..., 1], eq4[..., 0], lt4[..., 2], lt4[..., 1], lt4[..., 0]]
        inputs.append(np.stack(order, axis=-1))
        tops.append(lt4[..., 3])
    opened = open_bits(parties, [x ^ gates.masks for x, gates in zip(inputs, layer, strict=True)])
    new_less: list[BitArray] = []
    new_equal: list[BitArray] = []
    for top, d, gates in zip(tops, opened, layer, strict=True):
        values = _expand_monomials(d, gates)
        new_less.append(top ^ values[..., 0] ^ values[..., 1] ^ values[..., 2])
        new_equal.append(values[..., 3])
    return new_less, new_equal


def msb_from_opened(
    parties: Sequence[MpcParty],
    opened: Sequence[RingArray],
    preprocessing: Sequence[MsbPreprocessing],
) -> list[BitArray]:
    """Rounds 2 to 5 of ``secure_msb`` once ``y = x + r`` is open: return the opened ``c = msb(x) XOR rho``.

    ``c`` is public (uniform, as ``rho`` is); with the arithmetic shares of ``rho`` in
    ``preprocessing``, ``msb(x) = c + (1 - 2c) rho``.
    """
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
        less, equal = _gate_layer(parties, less, equal, [pre.layers[layer] for pre in preprocessing])
    sign_bits: list[BitArray] = []
    for party, y, lt, pre in zip(parties, opened, less, preprocessing, strict=True):
        top = lt[..., 0] ^ pre.mask_bits[..., 63]  # borrow into bit 63, XOR r_63
        if party.party_index == 0:
            top = top ^ (y >> np.uint64(63)).astype(np.uint8)
        sign_bits.append(top)
    opened_bits = open_bits(parties, [b ^ pre.bit_boolean for b, pre in zip(sign_bits, preprocessing, strict=True)])
    return opened_bits


def _bit_to_arithmetic(party: MpcParty, c_bits: BitArray, rho_share: RingArray) -> RingArray:
    """This party's share of ``b = c XOR rho = c + (1 - 2c) rho`` for public ``c``."""
    c = c_bits.astype(np.uint64)
    value = ring_multiply(ring_subtract(np.ones_like(c), ring_add(c, c)), rho_share)
    return ring_add(value, c) if party.party_index == 0 else value


def secure_msb(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    preprocessing: Sequence[MsbPreprocessing],
) -> list[RingArray]:
    """Return arithmetic shares of the sign bit ``msb(x)`` (``1`` iff ``signed(x) < 0``), 5 rounds.

    See the module docstring for the protocol (Mohassel & Zhang, "SecureML", IEEE S&P
    2017): open ``y = x + r``, reduce the comparison of ``y mod 2^63`` against the
    bit-shared ``r mod 2^63`` in a 3-layer tree of 4-input gates and fix the wrap-around
    with ``y_63 ^ r_63``.

    Raises:
        ValueError: if the party, share and preprocessing counts differ.

    >>> from defenses.mpc.protocol import Channel, reconstruct, ring_from_signed
    >>> prg = AesCtrPrg(seed=bytes(32))
    >>> channel = Channel(num_parties=2)
    >>> parties = [MpcParty(party_index=i, channel=channel) for i in range(2)]
    >>> x = ring_from_signed(np.array([-5, 0, 7], np.int64))
    >>> pre = ComparisonDealer(num_parties=2, prg=prg).msb_preprocessing((3,))
    >>> (reconstruct(secure_msb(parties, share(x, 2, prg), pre)).tolist(), channel.rounds)
    ([1, 0, 0], 5)
    """
    if not len(parties) == len(x_shares) == len(preprocessing):
        raise ValueError(
            f"need one party, x share and preprocessing each, got {len(parties)}, {len(x_shares)}, {len(preprocessing)}"
        )
    opened = open_shares(parties, [ring_add(x, pre.mask) for x, pre in zip(x_shares, preprocessing, strict=True)])
    c_bits = msb_from_opened(parties, opened, preprocessing)
    return [
        _bit_to_arithmetic(party, c, pre.bit_arithmetic)
        for party, c, pre in zip(parties, c_bits, preprocessing, strict=True)
    ]


def secure_select(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    value_shares: Sequence[RingArray],
    preprocessing: Sequence[SelectPreprocessing],
) -> tuple[list[RingArray], list[RingArray]]:
    """Return shares of ``msb(x_k)`` and of ``msb(x_k) * v`` for ``k`` rows of ``x``, in ``MSB_ROUNDS`` rounds.

    ``x``: ``[k, *S]``; ``v``: ``[*S]`` (any ring values: fixed point stays fixed point,
    the bit is an integer). The product costs no round of its own: ``F = v - B`` is opened
    in the first round together with ``y = x + r``, and with ``msb = c + (1 - 2c) rho``,
    ``msb * v = c v + (1 - 2c) (F rho + rho B)``, all local once ``c`` is open (the
    dealer shares ``rho B``).

    Raises:
        ValueError: if the counts differ.
    """
    if not len(parties) == len(x_shares) == len(value_shares) == len(preprocessing):
        raise ValueError(
            f"need one party, x share, value share and preprocessing each, got {len(parties)}, "
            f"{len(x_shares)}, {len(value_shares)}, {len(preprocessing)}"
        )
    opened = open_share_arrays(
        parties,
        [
            [ring_add(x, pre.msb.mask), ring_subtract(v, pre.value_mask)]
            for x, v, pre in zip(x_shares, value_shares, preprocessing, strict=True)
        ],
    )
    c_bits = msb_from_opened(parties, [o[0] for o in opened], [pre.msb for pre in preprocessing])
    signs: list[RingArray] = []
    products: list[RingArray] = []
    for party, c_b, o, v, pre in zip(parties, c_bits, opened, value_shares, preprocessing, strict=True):
        c = c_b.astype(np.uint64)
        signs.append(_bit_to_arithmetic(party, c_b, pre.msb.bit_arithmetic))
        rho_times_value = ring_add(ring_multiply(o[1][None], pre.msb.bit_arithmetic), pre.bit_mask_products)
        scale = ring_subtract(np.ones_like(c), ring_add(c, c))
        # c * v is linear in the shares of v: every party scales its own share.
        products.append(ring_add(ring_multiply(scale, rho_times_value), ring_multiply(c, v[None])))
    return signs, products


def secure_less_than(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    threshold: RingArray,
    preprocessing: Sequence[MsbPreprocessing],
) -> list[RingArray]:
    """Return arithmetic shares of ``[x < threshold]`` for a public ring threshold, ``MSB_ROUNDS`` (5) rounds.

    Computed as ``msb(x - threshold)``; correct whenever ``signed(x) - signed(threshold)``
    lies in ``[-2^63, 2^63)``, which holds for fixed-point values well inside
    ``representable_range``.
    """
    shifted = [
        ring_subtract(x, threshold) if party.party_index == 0 else x
        for party, x in zip(parties, x_shares, strict=True)
    ]
    return secure_msb(parties, shifted, preprocessing)
