"""Tests for the optimal (Hungarian) matching of reconstructions to originals."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from leakage.errors import ConfigError
from leakage.metrics import match_reconstructions, mse, pairwise_mse


def test_a_shuffled_batch_is_matched_back_exactly(generator: torch.Generator) -> None:
    originals = torch.rand(16, 3, 8, 8, generator=generator)
    shuffle = torch.randperm(16, generator=generator)
    reconstructions = originals[shuffle]

    permutation = match_reconstructions(reconstructions, originals)

    assert permutation.dtype == torch.int64
    assert torch.equal(reconstructions[permutation], originals)
    assert torch.equal(shuffle[permutation], torch.arange(16))


def test_pairwise_mse_matches_a_loop_over_pairs(generator: torch.Generator) -> None:
    reconstructions = torch.rand(4, 2, 3, generator=generator)
    originals = torch.rand(4, 2, 3, generator=generator)

    cost = pairwise_mse(reconstructions, originals)

    expected = [[float(((o.double() - r.double()) ** 2).mean()) for r in reconstructions] for o in originals]
    assert cost.shape == (4, 4) and cost.dtype == torch.float64
    assert np.allclose(cost.numpy(), expected, rtol=1e-12, atol=0)


def test_matching_finds_the_brute_force_optimum(generator: torch.Generator) -> None:
    reconstructions = torch.rand(6, 5, generator=generator)
    originals = torch.rand(6, 5, generator=generator)
    cost = pairwise_mse(reconstructions, originals)

    permutation = match_reconstructions(reconstructions, originals)

    best = min(sum(float(cost[i, order[i]]) for i in range(6)) for order in itertools.permutations(range(6)))
    assert float(mse(reconstructions[permutation], originals).sum()) == pytest.approx(best, rel=1e-12)


def test_one_good_reconstruction_is_not_counted_twice() -> None:
    # Greedy nearest-original scoring would give both reconstructions to original 0.
    originals = torch.tensor([[0.0], [10.0]])
    reconstructions = torch.tensor([[0.0], [1.0]])

    permutation = match_reconstructions(reconstructions, originals)

    assert sorted(permutation.tolist()) == [0, 1]
    assert permutation.tolist() == [0, 1]


@settings(max_examples=50, deadline=None)
@given(
    batch=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 4)),
        elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    ),
    data=st.data(),
)
def test_matching_never_scores_worse_than_identity_order(batch: np.ndarray, data: st.DataObject) -> None:
    originals = torch.from_numpy(batch)
    offsets = data.draw(arrays(np.float64, batch.shape, elements=st.floats(-10, 10, allow_nan=False)))
    reconstructions = originals + torch.from_numpy(offsets)

    permutation = match_reconstructions(reconstructions, originals)

    matched_total = float(mse(reconstructions[permutation], originals).sum())
    identity_total = float(mse(reconstructions, originals).sum())
    assert sorted(permutation.tolist()) == list(range(batch.shape[0]))
    assert matched_total <= identity_total + 1e-9 * (1.0 + identity_total)


def test_matching_rejects_mismatched_shapes_non_finite_values_and_unknown_costs() -> None:
    with pytest.raises(ConfigError, match="reconstructions and originals must have the same shape"):
        match_reconstructions(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="reconstructions contains NaN or Inf"):
        match_reconstructions(torch.tensor([[float("nan")], [0.0]]), torch.zeros(2, 1))
    with pytest.raises(ConfigError, match="cost must be one of mse, got 'ssim'"):
        match_reconstructions(torch.zeros(2, 1), torch.zeros(2, 1), cost="ssim")  # type: ignore[arg-type]


def test_matching_does_not_change_its_inputs(generator: torch.Generator) -> None:
    reconstructions = torch.rand(5, 3, generator=generator)
    originals = torch.rand(5, 3, generator=generator)
    before = (reconstructions.clone(), originals.clone())

    match_reconstructions(reconstructions, originals)

    assert torch.equal(reconstructions, before[0]) and torch.equal(originals, before[1])
