"""Tests for fixed-point encoding and SecureML two-party local truncation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from defenses.mpc.protocol import (
    AesCtrPrg,
    Channel,
    MpcParty,
    TrustedDealer,
    decode_fixed,
    encode_fixed,
    reconstruct,
    representable_range,
    ring_to_signed,
    secure_multiply,
    share,
    truncate_share,
)

FRACTIONAL_BITS = 16


def _prg(label: int = 0) -> AesCtrPrg:
    return AesCtrPrg(seed=bytes([label]) * 32)


@settings(max_examples=80, deadline=None)
@given(
    values=arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e9, 1e9)),
    fractional_bits=st.sampled_from([0, 8, 16, 24]),
)
def test_encode_decode_round_trip_is_within_half_a_step(values: np.ndarray, fractional_bits: int) -> None:
    decoded = decode_fixed(encode_fixed(values, fractional_bits), fractional_bits)

    assert np.all(np.abs(decoded - values) <= 2.0 ** -(fractional_bits + 1))


def test_negative_values_use_twos_complement() -> None:
    assert encode_fixed(np.array([-1.0]), 16).tolist() == [2**64 - 2**16]


def test_values_at_the_edge_of_the_range_encode_and_beyond_raise() -> None:
    low, high = representable_range(FRACTIONAL_BITS)
    inside = np.array([low, high - 2.0**-FRACTIONAL_BITS * 2**10])

    assert (decode_fixed(encode_fixed(inside)) == inside).all()
    for bad in [high, low * 2, 1e300, np.inf, -np.inf, np.nan]:
        with pytest.raises(ValueError, match=r"in \[-1\.40737e\+14, 1\.40737e\+14\)"):
            encode_fixed(np.array([0.0, bad]))


def _truncate_pair(shares: list[np.ndarray]) -> np.ndarray:
    return reconstruct(
        [truncate_share(s, party_index=i, num_parties=2, fractional_bits=FRACTIONAL_BITS) for i, s in enumerate(shares)]
    )


def test_local_truncation_is_off_by_at_most_one_in_the_last_bit() -> None:
    prg = _prg(1)
    exact = ring_to_signed(prg.random_ring((5_000,))) >> np.int64(24)  # |z| < 2^39, l_x = 39
    shares = share(exact.view(np.uint64), 2, prg)

    truncated = ring_to_signed(_truncate_pair(shares))

    difference = truncated - (exact >> np.int64(FRACTIONAL_BITS))  # floor(z / 2^f)
    assert set(np.unique(difference).tolist()) <= {0, 1}


def test_local_truncation_fails_at_about_the_documented_rate_for_large_values() -> None:
    # |z| = 2^60 (l_x = 60): the error is large with probability about |z| / 2^64 = 1/16 <= 2^(l_x + 1 - 64).
    samples = 20_000
    exact = np.full(samples, 2**60, dtype=np.int64)
    shares = share(exact.view(np.uint64), 2, _prg(2))

    truncated = ring_to_signed(_truncate_pair(shares))

    failure_rate = float(np.mean(np.abs(truncated - (exact >> np.int64(FRACTIONAL_BITS))) > 1))
    assert 0.04 < failure_rate < 2.0 ** (60 + 1 - 64)


def test_local_truncation_refuses_three_parties_and_bad_indices() -> None:
    share_value = np.zeros(3, np.uint64)
    with pytest.raises(ValueError, match="only sound for num_parties=2"):
        truncate_share(share_value, party_index=0, num_parties=3)
    with pytest.raises(ValueError, match="party_index must be 0 or 1"):
        truncate_share(share_value, party_index=2, num_parties=2)
    with pytest.raises(ValueError, match="fractional_bits"):
        encode_fixed(np.zeros(1), 63)


def test_shared_fixed_point_multiplication_with_truncation_is_within_its_error_bound() -> None:
    prg = _prg(3)
    x = np.linspace(-50.0, 50.0, 201)
    y = np.linspace(30.0, -20.0, 201)
    channel = Channel(num_parties=2)
    parties = [MpcParty(party_index=i, channel=channel) for i in range(2)]
    triples = TrustedDealer(num_parties=2, prg=prg).elementwise_triples(x.shape)
    x_encoded, y_encoded = encode_fixed(x), encode_fixed(y)

    product_shares = secure_multiply(parties, share(x_encoded, 2, prg), share(y_encoded, 2, prg), triples)
    truncated = [
        truncate_share(s, party_index=i, num_parties=2, fractional_bits=FRACTIONAL_BITS)
        for i, s in enumerate(product_shares)
    ]
    result = decode_fixed(reconstruct(truncated))

    # Integer view: off by at most one unit from floor(x_enc * y_enc / 2^f).
    exact_integer = ring_to_signed(x_encoded) * ring_to_signed(y_encoded) >> np.int64(FRACTIONAL_BITS)
    assert np.all(np.abs(ring_to_signed(reconstruct(truncated)) - exact_integer) <= 1)
    # Real view: encoding error of each factor (half a step) times the other factor, plus one step.
    step = 2.0**-FRACTIONAL_BITS
    bound = (np.abs(x) + np.abs(y) + step) * step / 2 + 2 * step
    assert np.all(np.abs(result - x * y) <= bound)
    assert channel.rounds == 1
