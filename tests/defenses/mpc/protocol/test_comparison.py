"""Tests for secure comparison: boolean AND triples, secure_msb / secure_less_than, costs, uniformity."""

from __future__ import annotations

import numpy as np
import pytest

from defenses.mpc.protocol import (
    CIRCUIT_LAYERS,
    MSB_ROUNDS,
    AesCtrPrg,
    Channel,
    ComparisonDealer,
    MpcParty,
    decode_ring_arrays,
    encode_fixed,
    framed_bits_size,
    framed_size,
    reconstruct,
    ring_from_signed,
    ring_multiply,
    ring_to_signed,
    secure_and,
    secure_less_than,
    secure_msb,
    secure_select,
    share,
    xor_reconstruct,
    xor_share,
)
from defenses.mpc.protocol.comparison import PRODUCT_SUBSETS


def _prg(label: int = 0) -> AesCtrPrg:
    return AesCtrPrg(seed=bytes([label]) * 32)


def _setup(num_parties: int) -> tuple[Channel, list[MpcParty], ComparisonDealer]:
    channel = Channel(num_parties=num_parties)
    parties = [MpcParty(party_index=i, channel=channel) for i in range(num_parties)]
    return channel, parties, ComparisonDealer(num_parties=num_parties, prg=_prg(1))


_EDGE_VALUES = [0, -1, 1, 2**63 - 1, -(2**63), -(2**63) + 1, 2**62, -(2**62), 12345, -12345]


@pytest.mark.parametrize("num_parties", [2, 3])
def test_bit_triples_satisfy_c_equals_a_and_b(num_parties: int) -> None:
    triples = ComparisonDealer(num_parties=num_parties, prg=_prg()).bit_triples((4, 5))

    a, b, c = (xor_reconstruct([getattr(t, name) for t in triples]) for name in "abc")

    assert len(triples) == num_parties
    assert ((a & b) == c).all()
    assert not (a == 0).all() and not (b == 0).all()


@pytest.mark.parametrize("num_parties", [2, 3])
def test_secure_and_matches_bitwise_and(num_parties: int) -> None:
    prg = _prg(2)
    channel, parties, dealer = _setup(num_parties)
    x, y = prg.random_bits((7, 64)), prg.random_bits((7, 64))

    z = secure_and(
        parties, xor_share(x, num_parties, prg), xor_share(y, num_parties, prg), dealer.bit_triples((7, 64))
    )

    assert (xor_reconstruct(z) == (x & y)).all()
    assert channel.rounds == 1


@pytest.mark.parametrize("num_parties", [2, 3])
def test_secure_msb_is_sign_for_edge_and_random_values(num_parties: int) -> None:
    prg = _prg(3)
    channel, parties, dealer = _setup(num_parties)
    signed = np.concatenate([np.array(_EDGE_VALUES, np.int64), prg.random_ring((500,)).view(np.int64)])
    x = ring_from_signed(signed)

    bits = secure_msb(parties, share(x, num_parties, prg), dealer.msb_preprocessing(x.shape))

    assert reconstruct(bits).tolist() == (signed < 0).astype(np.uint64).tolist()
    assert channel.pending() == 0


def test_secure_msb_handles_masks_whose_sum_wraps() -> None:
    # Each preprocessing is checked for whether y = x + r wrapped mod 2^64; both cases must occur.
    prg = _prg(4)
    _, parties, dealer = _setup(2)
    signed = np.array(_EDGE_VALUES * 20, np.int64)
    x = ring_from_signed(signed)
    pre = dealer.msb_preprocessing(x.shape)
    r = reconstruct([p.mask for p in pre])

    bits = secure_msb(parties, share(x, 2, prg), pre)

    wrapped = (x + r) < x  # uint64 overflow
    assert wrapped.any() and (~wrapped).any()
    assert reconstruct(bits).tolist() == (signed < 0).astype(np.uint64).tolist()


def test_secure_less_than_public_threshold_on_fixed_point() -> None:
    prg = _prg(5)
    _, parties, dealer = _setup(2)
    reals = np.array([-3.0, -0.5, -0.4999847, 0.0, 0.5, 0.5000153, 1e6, -1e6])
    x = encode_fixed(reals)

    bits = secure_less_than(parties, share(x, 2, prg), encode_fixed(np.array(0.5)), dealer.msb_preprocessing(x.shape))

    assert reconstruct(bits).tolist() == (reals < 0.5).astype(np.uint64).tolist()


@pytest.mark.parametrize("num_parties", [2, 3])
def test_secure_msb_costs_five_rounds_and_the_expected_bytes(num_parties: int) -> None:
    prg = _prg(6)
    channel, parties, dealer = _setup(num_parties)
    shape = (3, 4)
    x = prg.random_ring(shape)

    secure_msb(parties, share(x, num_parties, prg), dealer.msb_preprocessing(shape))

    pairs = num_parties * (num_parties - 1)
    # The opened y = x + r, seven masked inputs per group of four segments in layers of
    # 16, 4 and 1 groups, and the opened output bit.
    per_pair = (
        framed_size([shape])
        + sum(framed_bits_size([(*shape, groups, 7)]) for groups in (16, 4, 1))
        + framed_bits_size([shape])
    )
    assert channel.rounds == MSB_ROUNDS == 5
    assert channel.messages_sent == pairs * (CIRCUIT_LAYERS + 2)
    assert channel.bytes_sent == pairs * per_pair


@pytest.mark.parametrize("num_parties", [2, 3])
def test_gate_layer_products_are_the_products_of_the_masks(num_parties: int) -> None:
    layer = ComparisonDealer(num_parties=num_parties, prg=_prg(11)).gate_layer((5, 4))
    masks = xor_reconstruct([g.masks for g in layer])
    products = xor_reconstruct([g.products for g in layer])
    for k, subset in enumerate(PRODUCT_SUBSETS):
        assert (products[..., k] == np.bitwise_and.reduce(masks[..., list(subset)], axis=-1)).all()
    assert len(PRODUCT_SUBSETS) == 22


@pytest.mark.parametrize("num_parties", [2, 3])
def test_secure_select_returns_sign_bits_and_their_product_with_a_value(num_parties: int) -> None:
    prg = _prg(12)
    channel, parties, dealer = _setup(num_parties)
    x = ring_from_signed(np.array([[-5, 0, 7, -(2**40)], [3, -1, 2**50, 1]], np.int64))
    v = encode_fixed(np.array([1.5, -2.25, 0.75, 10.0]))

    signs, products = secure_select(
        parties, share(x, num_parties, prg), share(v, num_parties, prg), dealer.select_preprocessing(2, (4,))
    )

    expected = (ring_to_signed(x) < 0).astype(np.uint64)
    assert reconstruct(signs).tolist() == expected.tolist()
    assert (reconstruct(products) == ring_multiply(expected, np.broadcast_to(v, expected.shape))).all()
    assert channel.rounds == MSB_ROUNDS  # the product adds no round


def test_opened_masked_value_is_uniform_in_its_top_bits() -> None:
    # The first round opens y = x + r. For a fixed x (the most negative region, where a sign
    # leak would show) the top 4 bits of y must be uniform over 16 cells: chi-square with
    # 15 degrees of freedom, critical value 37.7 at p = 0.001.
    prg = _prg(7)
    runs = 4000
    channel = Channel(num_parties=2, record=True)
    parties = [MpcParty(party_index=i, channel=channel) for i in range(2)]
    x = np.full((runs,), 2**63 + 5, np.uint64)

    secure_msb(parties, share(x, 2, prg), ComparisonDealer(num_parties=2, prg=_prg(8)).msb_preprocessing((runs,)))

    first_round = [decode_ring_arrays(payload, [(runs,)])[0] for _, _, payload in channel.log[:2]]
    y = reconstruct(first_round)
    counts = np.bincount((y >> np.uint64(60)).astype(np.int64), minlength=16)
    expected = runs / 16
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 37.7


def test_dealer_rejects_bad_party_count() -> None:
    with pytest.raises(ValueError, match="num_parties must be one of"):
        ComparisonDealer(num_parties=4, prg=_prg())


def test_secure_msb_rejects_mismatched_counts() -> None:
    _, parties, dealer = _setup(2)
    x = np.zeros((2,), np.uint64)
    with pytest.raises(ValueError, match="need one party"):
        secure_msb(parties, [x], dealer.msb_preprocessing((2,)))


def test_dealer_is_deterministic_under_a_fixed_seed() -> None:
    first = ComparisonDealer(num_parties=2, prg=_prg(9)).msb_preprocessing((3,))
    second = ComparisonDealer(num_parties=2, prg=_prg(9)).msb_preprocessing((3,))

    assert all((a.mask_bits == b.mask_bits).all() for a, b in zip(first, second, strict=True))
