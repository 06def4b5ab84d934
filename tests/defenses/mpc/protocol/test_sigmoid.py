"""Tests for the SecureML piecewise sigmoid and the cubic fit on fixed-point shares."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from defenses.mpc.protocol import (
    CUBIC_SIGMOID_COEFFICIENTS,
    MSB_ROUNDS,
    AesCtrPrg,
    Channel,
    ComparisonDealer,
    MpcParty,
    TrustedDealer,
    cubic_sigmoid,
    decode_fixed,
    encode_fixed,
    piecewise_sigmoid,
    reconstruct,
    secure_cubic_sigmoid,
    secure_piecewise_sigmoid,
    share,
)

_STEP = 2.0**-16  # one unit in the last place at the default 16 fractional bits


def _prg(label: int = 0) -> AesCtrPrg:
    return AesCtrPrg(seed=bytes([label]) * 32)


def _setup(num_parties: int) -> tuple[Channel, list[MpcParty]]:
    channel = Channel(num_parties=num_parties)
    return channel, [MpcParty(party_index=i, channel=channel) for i in range(num_parties)]


def _true_sigmoid(values: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-values))
    return result


def _inputs() -> NDArray[np.float64]:
    edges = np.array([-8.0, -0.5, -0.5 - _STEP, -0.5 + _STEP, 0.0, 0.5, 0.5 - _STEP, 0.5 + _STEP, 8.0])
    grid = np.linspace(-8.0, 8.0, 401)
    return np.concatenate([edges, grid])


@pytest.mark.parametrize("num_parties", [2, 3])
def test_secure_piecewise_sigmoid_matches_plaintext_exactly(num_parties: int) -> None:
    prg = _prg(1)
    channel, parties = _setup(num_parties)
    reals = _inputs()
    x = encode_fixed(reals)
    pre = ComparisonDealer(num_parties=num_parties, prg=_prg(2)).select_preprocessing(2, x.shape)

    result = decode_fixed(reconstruct(secure_piecewise_sigmoid(parties, share(x, num_parties, prg), pre)))

    # No truncation is involved, so the result is exact on the fixed-point grid.
    assert np.abs(result - piecewise_sigmoid(decode_fixed(x))).max() == 0.0
    assert channel.rounds == MSB_ROUNDS == 5  # the selection's product shares the comparison's rounds


def test_secure_cubic_sigmoid_matches_plaintext_within_truncation_error() -> None:
    prg = _prg(4)
    channel, parties = _setup(2)
    reals = _inputs()
    x = encode_fixed(reals)
    dealer = TrustedDealer(num_parties=2, prg=_prg(5))

    result = decode_fixed(
        reconstruct(
            secure_cubic_sigmoid(
                parties, share(x, 2, prg), dealer.elementwise_triples(x.shape), dealer.elementwise_triples(x.shape)
            )
        )
    )

    # Truncation errs by at most one unit per step (x^2, x^3 carrying |x| <= 8 times the x^2
    # error, then scaled by |c3| < 0.01, and the final step): under 3 units in all. The
    # coefficients are rounded to 16 bits: error <= 2^-17 * (|x| + |x|^3) <= 2^-17 * 520.
    bound = 3 * _STEP + 2.0**-17 * 520
    assert np.abs(result - cubic_sigmoid(reals)).max() <= bound
    assert channel.rounds == 2


def test_cubic_coefficients_are_the_least_squares_fit_on_minus_four_to_four() -> None:
    grid = np.linspace(-4.0, 4.0, 8001)
    design = np.stack([grid, grid**3], axis=1)
    fitted, *_ = np.linalg.lstsq(design, _true_sigmoid(grid) - 0.5, rcond=None)

    assert CUBIC_SIGMOID_COEFFICIENTS[0] == 0.5
    assert np.allclose(CUBIC_SIGMOID_COEFFICIENTS[1:], fitted, atol=1e-6)


def test_documented_max_errors_against_the_true_sigmoid() -> None:
    wide = np.linspace(-8.0, 8.0, 160001)
    narrow = wide[np.abs(wide) <= 4.0]

    piecewise_error = np.abs(piecewise_sigmoid(wide) - _true_sigmoid(wide)).max()
    cubic_error_wide = np.abs(cubic_sigmoid(wide) - _true_sigmoid(wide)).max()
    cubic_error_narrow = np.abs(cubic_sigmoid(narrow) - _true_sigmoid(narrow)).max()
    taylor_error = np.abs(0.5 + wide / 4 - _true_sigmoid(wide)).max()

    assert piecewise_error == pytest.approx(0.3775, abs=1e-4)
    assert cubic_error_wide == pytest.approx(2.148, abs=1e-3)
    assert cubic_error_narrow == pytest.approx(0.0382, abs=1e-4)
    assert taylor_error == pytest.approx(1.500, abs=1e-3)


def test_secure_cubic_sigmoid_three_parties_needs_truncation_pairs() -> None:
    _, parties = _setup(3)
    x = np.zeros((1,), np.uint64)
    triples = TrustedDealer(num_parties=3, prg=_prg()).elementwise_triples((1,))
    with pytest.raises(ValueError, match="cannot truncate locally"):
        secure_cubic_sigmoid(parties, [x, x, x], triples, triples)


def test_secure_cubic_sigmoid_three_parties_with_truncation_pairs() -> None:
    prg = _prg(6)
    channel, parties = _setup(3)
    reals = _inputs()
    x = encode_fixed(reals)
    dealer = TrustedDealer(num_parties=3, prg=_prg(7))
    per_truncation = [dealer.truncation_pairs(x.shape, 16) for _ in range(3)]
    pairs = [[t[p] for t in per_truncation] for p in range(3)]

    result = decode_fixed(
        reconstruct(
            secure_cubic_sigmoid(
                parties,
                share(x, 3, prg),
                dealer.elementwise_triples(x.shape),
                dealer.elementwise_triples(x.shape),
                truncation_pairs=pairs,
            )
        )
    )

    bound = 3 * _STEP + 2.0**-17 * 520  # as for two parties: pair truncation has the same one-unit bound
    assert np.abs(result - cubic_sigmoid(reals)).max() <= bound
    assert channel.rounds == 5  # two multiplications and three truncations
