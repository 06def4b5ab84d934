"""Tests for ring arithmetic, the AES-CTR PRG and additive secret sharing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from scipy import stats

from defenses.mpc.protocol import (
    AesCtrPrg,
    RingArray,
    reconstruct,
    ring_add,
    ring_matmul,
    ring_multiply,
    ring_negate,
    ring_subtract,
    share,
)

MODULUS = 2**64
NUM_SAMPLES = 20_000
TOP_BITS = 8


def _prg(label: int = 0) -> AesCtrPrg:
    return AesCtrPrg(seed=bytes([label]) * 32)


def _weak_share(secret: RingArray, prg: AesCtrPrg) -> list[RingArray]:
    """Deliberately broken 2-party sharing: the mask has only 40 random bits (negative control)."""
    mask = prg.random_ring(secret.shape) >> np.uint64(24)
    return [mask, ring_subtract(secret, mask)]


def _top_bits_pvalue(values: RingArray) -> float:
    counts = np.bincount((values >> np.uint64(64 - TOP_BITS)).astype(np.int64), minlength=2**TOP_BITS)
    return float(stats.chisquare(counts).pvalue)


def test_ring_operations_match_python_integers() -> None:
    left = _prg(1).random_ring((50,))
    right = _prg(2).random_ring((50,))
    pairs = list(zip(left.tolist(), right.tolist(), strict=True))

    assert ring_add(left, right).tolist() == [(a + b) % MODULUS for a, b in pairs]
    assert ring_subtract(left, right).tolist() == [(a - b) % MODULUS for a, b in pairs]
    assert ring_multiply(left, right).tolist() == [(a * b) % MODULUS for a, b in pairs]
    assert ring_negate(left).tolist() == [(-a) % MODULUS for a in left.tolist()]


@pytest.mark.parametrize(("left_shape", "right_shape"), [((32, 31), (31, 1)), ((5, 7), (7, 4)), ((1, 1), (1, 1))])
def test_ring_matmul_is_exact_modulo_two_to_the_64(left_shape: tuple[int, int], right_shape: tuple[int, int]) -> None:
    left = _prg(3).random_ring(left_shape)
    right = _prg(4).random_ring(right_shape)
    reference = [
        [sum(int(left[i, k]) * int(right[k, j]) for k in range(left_shape[1])) % MODULUS for j in range(right_shape[1])]
        for i in range(left_shape[0])
    ]

    assert ring_matmul(left, right).tolist() == reference


def test_prg_is_reproducible_under_a_fixed_seed_and_fresh_otherwise() -> None:
    assert (_prg(5).random_ring((8,)) == _prg(5).random_ring((8,))).all()
    assert not (_prg(5).random_ring((8,)) == _prg(6).random_ring((8,))).all()
    assert not (AesCtrPrg().random_ring((8,)) == AesCtrPrg().random_ring((8,))).all()
    stream = _prg(7)
    assert not (stream.random_ring((8,)) == stream.random_ring((8,))).all()


def test_prg_rejects_a_seed_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        AesCtrPrg(seed=b"short")


@pytest.mark.parametrize("parties", [2, 3])
def test_every_share_has_uniform_top_bits(parties: int) -> None:
    secret = np.full(NUM_SAMPLES, 123_456_789, dtype=np.uint64)

    shares = share(secret, parties, _prg(8))

    for party_share in shares:
        assert _top_bits_pvalue(party_share) > 1e-4


def test_weak_40_bit_mask_fails_the_uniformity_test() -> None:
    secret = np.full(NUM_SAMPLES, 123_456_789, dtype=np.uint64)

    shares = _weak_share(secret, _prg(8))

    for party_share in shares:
        assert _top_bits_pvalue(party_share) < 1e-10


def _two_sample_pvalue(share_fn: Callable[[RingArray, int, AesCtrPrg], list[RingArray]], parties: int) -> float:
    low = np.zeros(NUM_SAMPLES, dtype=np.uint64)
    high = np.full(NUM_SAMPLES, 2**63 + 12_345, dtype=np.uint64)
    last_low = share_fn(low, parties, _prg(9))[-1]
    last_high = share_fn(high, parties, _prg(10))[-1]
    return float(stats.ks_2samp(last_low / 2.0**64, last_high / 2.0**64).pvalue)


@pytest.mark.parametrize("parties", [2, 3])
def test_shares_of_different_secrets_are_identically_distributed(parties: int) -> None:
    assert _two_sample_pvalue(share, parties) > 1e-4


def test_weak_sharing_distinguishes_secrets_in_the_two_sample_test() -> None:
    assert _two_sample_pvalue(lambda secret, _parties, prg: _weak_share(secret, prg), 2) < 1e-10


@settings(max_examples=60, deadline=None)
@given(
    secret=arrays(np.uint64, array_shapes(min_dims=1, max_dims=3, max_side=6)),
    parties=st.sampled_from([2, 3]),
    seed=st.binary(min_size=32, max_size=32),
)
def test_reconstruct_inverts_share(secret: RingArray, parties: int, seed: bytes) -> None:
    shares = share(secret, parties, AesCtrPrg(seed=seed))

    assert len(shares) == parties
    assert (reconstruct(shares) == secret).all()


def test_share_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="parties must be one of"):
        share(np.zeros(2, np.uint64), 4, _prg())
    with pytest.raises(ValueError, match="uint64"):
        share(np.zeros(2, np.int64), 2, _prg())
    with pytest.raises(ValueError, match="at least one share"):
        reconstruct([])
    with pytest.raises(ValueError, match="one shape"):
        reconstruct([np.zeros(2, np.uint64), np.zeros(3, np.uint64)])
