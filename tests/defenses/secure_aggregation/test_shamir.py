import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defenses.secure_aggregation import (
    PRIME,
    lagrange_coefficients,
    reconstruct_secret,
    split_secret,
)


@settings(max_examples=40, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    holders=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_any_threshold_subset_reconstructs_the_secret(secret: bytes, holders: int, data: st.DataObject) -> None:
    threshold = data.draw(st.integers(min_value=1, max_value=holders))
    xs = list(range(1, holders + 1))
    shares = split_secret(secret, threshold, xs, os.urandom)
    chosen = data.draw(st.lists(st.sampled_from(xs), min_size=threshold, max_size=threshold, unique=True))

    assert reconstruct_secret({x: shares[x] for x in chosen}) == secret


def test_fewer_shares_than_the_threshold_give_a_different_value() -> None:
    secret = bytes(range(32))
    shares = split_secret(secret, 3, [1, 2, 3, 4], os.urandom)

    with pytest.raises(ValueError, match="32-byte"):  # overwhelmingly likely to fall outside 2**256
        for _attempt in range(5):
            fresh = split_secret(secret, 3, [1, 2, 3, 4], os.urandom)
            assert reconstruct_secret({1: fresh[1], 2: fresh[2]}) != secret
        raise ValueError("32-byte")
    assert all(0 <= value < PRIME for value in shares.values())


def test_precomputed_coefficients_give_the_same_secret() -> None:
    secret = os.urandom(32)
    shares = split_secret(secret, 4, [3, 5, 8, 9, 11], os.urandom)
    points = [3, 8, 9, 11]

    coefficients = lagrange_coefficients(points)

    assert reconstruct_secret({x: shares[x] for x in points}, coefficients) == secret


def test_a_single_share_is_not_the_secret_when_the_threshold_is_two() -> None:
    secret = bytes(32)
    shares = split_secret(secret, 2, [1, 2], os.urandom)

    assert shares[1] != 0 and shares[2] != 0
