"""Beaver-triple multiplication of additively shared ring values.

Offline phase (trusted dealer, Beaver, "Efficient Multiparty Protocols Using Circuit
Randomization", CRYPTO 1991): draw uniform ``a, b`` and share ``a``, ``b`` and
``c = a * b mod 2^64``; for matrices (Mohassel & Zhang, "SecureML", IEEE S&P 2017,
Sec. 4.1) draw ``A: [m, k]``, ``B: [k, n]`` and share ``C = A @ B mod 2^64``.

Online phase: parties holding shares of ``x`` and ``y`` open ``e = x - a`` and
``f = y - b`` (every party broadcasts its shares of both in one message: one round), and
party ``i`` sets::

    z_i = c_i + e * b_i + f * a_i + [i == 0] * e * f          (elementwise)
    Z_i = C_i + E @ B_i + A_i @ F + [i == 0] * E @ F            (matrix)

so ``sum_i z_i = x * y``. ``e`` and ``f`` are uniform and reveal nothing as long as each
triple is used once. Each party is its own ``MpcParty`` object that sees only its shares
and what arrives through the ``Channel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from defenses.mpc.protocol.channel import (
    Channel,
    decode_ring_arrays,
    encode_ring_arrays,
)
from defenses.mpc.protocol.prg import AesCtrPrg
from defenses.mpc.protocol.ring import (
    RingArray,
    ring_add,
    ring_from_signed,
    ring_matmul,
    ring_multiply,
    ring_negate,
    ring_subtract,
    ring_sum,
    ring_to_signed,
)
from defenses.mpc.protocol.sharing import _check_party_count, share

__all__ = [
    "MpcParty",
    "PendingProduct",
    "TripleShare",
    "TruncationPair",
    "TrustedDealer",
    "broadcast",
    "open_share_arrays",
    "open_shares",
    "secure_matmul",
    "secure_matmul_premasked",
    "secure_multiply",
]

ProductKind = Literal["elementwise", "matrix"]


@dataclass(frozen=True)
class TripleShare:
    """One party's share of a Beaver triple: ``c = a * b`` or ``C = A @ B`` after reconstruction."""

    a: RingArray
    b: RingArray
    c: RingArray


@dataclass(frozen=True)
class TruncationPair:
    """One party's share of a truncation pair: ``r`` uniform and ``r' = ceil(signed(r) / 2^f)``."""

    mask: RingArray
    shifted: RingArray


@dataclass(frozen=True)
class PendingProduct:
    """A party's state between sending its masked shares and receiving the others'."""

    kind: ProductKind
    e_share: RingArray  # this party's share of e = x - a
    f_share: RingArray  # this party's share of f = y - b
    triple: TripleShare


class TrustedDealer:
    """Offline-phase dealer that hands each party its share of fresh Beaver triples.

    Args:
        num_parties: 2 or 3.
        prg: cryptographic randomness for the triples and their shares.

    >>> dealer = TrustedDealer(num_parties=2, prg=AesCtrPrg(seed=bytes(32)))
    >>> triples = dealer.elementwise_triples((3,))
    >>> from defenses.mpc.protocol.sharing import reconstruct
    >>> a, b, c = (reconstruct([getattr(t, n) for t in triples]) for n in "abc")
    >>> bool((ring_multiply(a, b) == c).all())
    True
    """

    def __init__(self, *, num_parties: int, prg: AesCtrPrg) -> None:
        _check_party_count("num_parties", num_parties)
        self.num_parties = num_parties
        self._prg = prg

    def random_ring(self, shape: tuple[int, ...]) -> RingArray:
        """Return a fresh uniform ring array from the dealer's generator (a mask it will share)."""
        return self._prg.random_ring(shape)

    def share(self, secret: RingArray) -> list[RingArray]:
        """Return fresh additive shares of ``secret`` for the parties."""
        return share(secret, self.num_parties, self._prg)

    def _deal(self, a: RingArray, b: RingArray, c: RingArray) -> list[TripleShare]:
        a_shares, b_shares, c_shares = (share(v, self.num_parties, self._prg) for v in (a, b, c))
        return [TripleShare(a=sa, b=sb, c=sc) for sa, sb, sc in zip(a_shares, b_shares, c_shares, strict=True)]

    def elementwise_triples(self, shape: tuple[int, ...]) -> list[TripleShare]:
        """Return per-party shares of ``a, b, c = a * b mod 2^64``, all of ``shape``."""
        a = self._prg.random_ring(shape)
        b = self._prg.random_ring(shape)
        return self._deal(a, b, ring_multiply(a, b))

    def matrix_triples(self, left_shape: tuple[int, int], right_shape: tuple[int, int]) -> list[TripleShare]:
        """Return per-party shares of ``A: left_shape``, ``B: right_shape``, ``C = A @ B mod 2^64``.

        Raises:
            ValueError: if the inner dimensions differ.
        """
        if len(left_shape) != 2 or len(right_shape) != 2 or left_shape[1] != right_shape[0]:
            raise ValueError(f"matrix shapes must be [m, k] and [k, n], got {left_shape} and {right_shape}")
        a = self._prg.random_ring(left_shape)
        b = self._prg.random_ring(right_shape)
        return self._deal(a, b, ring_matmul(a, b))

    def matrix_triples_given_left(
        self, left: RingArray, left_shares: Sequence[RingArray], right_shape: tuple[int, int]
    ) -> list[TripleShare]:
        """Return triples whose ``A`` is a mask the dealer drew earlier: fresh ``B``, ``C = A @ B``.

        SecureML (Sec. 4.2) masks the data matrix once, ``E = X - A`` is opened once,
        and every later product with a slice of ``X`` reuses the slice of ``A`` with a
        fresh ``B``: the opened ``F = Y - B`` stays uniform and only ``F`` travels.

        Args:
            left: the dealer's ``A: [m, k]`` (a slice of an earlier mask).
            left_shares: the parties' shares of exactly that slice.
            right_shape: ``[k, n]``.
        """
        if left.ndim != 2 or len(right_shape) != 2 or left.shape[1] != right_shape[0]:
            raise ValueError(f"matrix shapes must be [m, k] and [k, n], got {left.shape} and {right_shape}")
        b = self._prg.random_ring(right_shape)
        b_shares = share(b, self.num_parties, self._prg)
        c_shares = share(ring_matmul(left, b), self.num_parties, self._prg)
        return [
            TripleShare(a=sa, b=sb, c=sc) for sa, sb, sc in zip(left_shares, b_shares, c_shares, strict=True)
        ]

    def truncation_pairs(self, shape: tuple[int, ...], fractional_bits: int) -> list[TruncationPair]:
        """Return per-party shares of ``r`` (uniform) and ``r' = ceil(signed(r) / 2^f)``.

        Rounding ``r`` up while the opened ``z - r`` is rounded down keeps the sum within
        one unit of ``z / 2^f`` either way, as SecureML's local truncation does.

        The material of ``secure_truncate`` for parties that cannot truncate locally
        (three parties; Mohassel & Rindal, "ABY3", CCS 2018, Sec. 5.1.2).
        """
        if not 0 <= fractional_bits <= 62:
            raise ValueError(f"fractional_bits must be in [0, 62], got {fractional_bits}")
        mask = self._prg.random_ring(shape)
        shifted = ring_negate(ring_from_signed(ring_to_signed(ring_negate(mask)) >> fractional_bits))
        masks, shifts = share(mask, self.num_parties, self._prg), share(shifted, self.num_parties, self._prg)
        return [TruncationPair(mask=m, shifted=t) for m, t in zip(masks, shifts, strict=True)]


class MpcParty:
    """One computing party: holds its own shares, talks to the others only through ``channel``.

    Args:
        party_index: this party's id in ``[0, channel.num_parties)``.
        channel: the shared message channel.
    """

    def __init__(self, *, party_index: int, channel: Channel) -> None:
        if not 0 <= party_index < channel.num_parties:
            raise ValueError(f"party_index must be in [0, {channel.num_parties}), got {party_index}")
        self.party_index = party_index
        self.channel = channel

    def peers(self) -> list[int]:
        """Return the other parties' indices."""
        return [p for p in range(self.channel.num_parties) if p != self.party_index]

    def start_product(
        self, kind: ProductKind, x_share: RingArray, y_share: RingArray, triple: TripleShare
    ) -> PendingProduct:
        """Send this party's shares of ``e = x - a`` and ``f = y - b`` to every peer.

        Raises:
            ValueError: if the operand shapes do not match the triple's.
        """
        if x_share.shape != triple.a.shape or y_share.shape != triple.b.shape:
            raise ValueError(
                f"operand shapes {x_share.shape}, {y_share.shape} do not match the triple's "
                f"{triple.a.shape}, {triple.b.shape}"
            )
        e_share = ring_subtract(x_share, triple.a)
        f_share = ring_subtract(y_share, triple.b)
        payload = encode_ring_arrays([e_share, f_share])
        for peer in self.peers():
            self.channel.send(sender=self.party_index, receiver=peer, payload=payload)
        return PendingProduct(kind=kind, e_share=e_share, f_share=f_share, triple=triple)

    def finish_product(self, pending: PendingProduct) -> RingArray:
        """Receive the peers' masked shares, open ``e`` and ``f``, and return this party's share of the product.

        Raises:
            MalformedMessageError: if a peer's message is missing, truncated or mis-shaped.
        """
        shapes = [pending.e_share.shape, pending.f_share.shape]
        e_terms, f_terms = [pending.e_share], [pending.f_share]
        for peer in self.peers():
            e_peer, f_peer = decode_ring_arrays(self.channel.receive(receiver=self.party_index, sender=peer), shapes)
            e_terms.append(e_peer)
            f_terms.append(f_peer)
        e, f = ring_sum(e_terms), ring_sum(f_terms)
        t = pending.triple
        product = ring_multiply if pending.kind == "elementwise" else ring_matmul
        result = ring_add(ring_add(t.c, product(e, t.b)), product(t.a, f))
        if self.party_index == 0:
            result = ring_add(result, product(e, f))
        return result


def broadcast(parties: Sequence[MpcParty], payloads: Sequence[bytes]) -> list[list[bytes]]:
    """Every party sends its payload to every peer (one round); return, per party, what its peers sent.

    Raises:
        MalformedMessageError: if a peer's message is missing.
    """
    for party, payload in zip(parties, payloads, strict=True):
        for peer in party.peers():
            party.channel.send(sender=party.party_index, receiver=peer, payload=payload)
    return [
        [party.channel.receive(receiver=party.party_index, sender=peer) for peer in party.peers()]
        for party in parties
    ]


def open_share_arrays(
    parties: Sequence[MpcParty], shares: Sequence[Sequence[RingArray]]
) -> list[list[RingArray]]:
    """Open several additively shared arrays at once: one message per peer, one round.

    Args:
        parties: the parties.
        shares: per party, its shares of every array to open (same shapes for all parties).

    Returns:
        Per party, the opened arrays (every party computes the same values).

    Raises:
        MalformedMessageError: if a peer's message is missing, truncated or mis-shaped.
    """
    received = broadcast(parties, [encode_ring_arrays(list(pieces)) for pieces in shares])
    opened: list[list[RingArray]] = []
    for pieces, messages in zip(shares, received, strict=True):
        shapes = [piece.shape for piece in pieces]
        terms = [list(pieces), *(decode_ring_arrays(message, shapes) for message in messages)]
        opened.append([ring_sum([term[i] for term in terms]) for i in range(len(pieces))])
    return opened


def open_shares(parties: Sequence[MpcParty], shares: Sequence[RingArray]) -> list[RingArray]:
    """Every party broadcasts its share (one round); return the value each party reconstructs.

    Raises:
        MalformedMessageError: if a peer's message is missing, truncated or mis-shaped.
    """
    return [opened[0] for opened in open_share_arrays(parties, [[piece] for piece in shares])]


def secure_matmul_premasked(
    parties: Sequence[MpcParty],
    opened_left: RingArray,
    y_shares: Sequence[RingArray],
    triples: Sequence[TripleShare],
) -> list[RingArray]:
    """Return shares of ``X @ Y`` when ``E = X - A`` is already open to every party; one round.

    Only ``F = Y - B`` is opened (SecureML's reuse of the data mask, Sec. 4.2); party
    ``i`` sets ``Z_i = C_i + E @ B_i + A_i @ F + [i == 0] E @ F``.

    Raises:
        ValueError: if counts or shapes do not match.
        MalformedMessageError: if a peer's message is missing, truncated or mis-shaped.
    """
    if not len(parties) == len(y_shares) == len(triples):
        raise ValueError(
            f"need one party, y share and triple each, got {len(parties)}, {len(y_shares)}, {len(triples)}"
        )
    for y, t in zip(y_shares, triples, strict=True):
        if opened_left.shape != t.a.shape or y.shape != t.b.shape:
            raise ValueError(
                f"operand shapes {opened_left.shape}, {y.shape} do not match the triple's {t.a.shape}, {t.b.shape}"
            )
    opened = open_shares(parties, [ring_subtract(y, t.b) for y, t in zip(y_shares, triples, strict=True)])
    results: list[RingArray] = []
    for party, f, t in zip(parties, opened, triples, strict=True):
        result = ring_add(ring_add(t.c, ring_matmul(opened_left, t.b)), ring_matmul(t.a, f))
        if party.party_index == 0:
            result = ring_add(result, ring_matmul(opened_left, f))
        results.append(result)
    return results


def _run_products(
    kind: ProductKind,
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    y_shares: Sequence[RingArray],
    triples: Sequence[TripleShare],
) -> list[RingArray]:
    if not len(parties) == len(x_shares) == len(y_shares) == len(triples):
        raise ValueError(
            f"need one party, x share, y share and triple each, got {len(parties)}, {len(x_shares)}, "
            f"{len(y_shares)}, {len(triples)}"
        )
    pending = [p.start_product(kind, x, y, t) for p, x, y, t in zip(parties, x_shares, y_shares, triples, strict=True)]
    return [p.finish_product(state) for p, state in zip(parties, pending, strict=True)]


def secure_multiply(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    y_shares: Sequence[RingArray],
    triples: Sequence[TripleShare],
) -> list[RingArray]:
    """Return shares of ``x * y mod 2^64`` (elementwise), one round of communication.

    >>> from defenses.mpc.protocol.sharing import reconstruct
    >>> import numpy as np
    >>> prg = AesCtrPrg(seed=bytes(32))
    >>> channel = Channel(num_parties=2)
    >>> parties = [MpcParty(party_index=i, channel=channel) for i in range(2)]
    >>> x, y = np.array([6], np.uint64), np.array([7], np.uint64)
    >>> triples = TrustedDealer(num_parties=2, prg=prg).elementwise_triples((1,))
    >>> z = secure_multiply(parties, share(x, 2, prg), share(y, 2, prg), triples)
    >>> (reconstruct(z).tolist(), channel.rounds)
    ([42], 1)
    """
    return _run_products("elementwise", parties, x_shares, y_shares, triples)


def secure_matmul(
    parties: Sequence[MpcParty],
    x_shares: Sequence[RingArray],
    y_shares: Sequence[RingArray],
    triples: Sequence[TripleShare],
) -> list[RingArray]:
    """Return shares of ``X @ Y mod 2^64`` for ``X: [m, k]``, ``Y: [k, n]``, one round of communication."""
    return _run_products("matrix", parties, x_shares, y_shares, triples)
