"""Steps 1 and 2 of ``binary_records``: the statistics fit, the record count and the Gram matrix."""

import numpy as np
import pytest
import torch

from attacks.binary_records import (
    fit_statistics,
    infer_num_samples,
    minimum_rounds,
    record_gram,
)


def _gram(records: torch.Tensor) -> torch.Tensor:
    augmented = torch.cat([records.long(), torch.ones(records.shape[0], 1, dtype=torch.int64)], dim=1)
    return augmented.T @ augmented


def _statistics(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A = (1/n) sum x~ x~^T`` and ``v = (1/n) sum y x~`` in float64."""
    augmented = torch.cat([features, torch.ones(features.shape[0], 1)], dim=1).double()
    signs = 2.0 * labels.double() - 1.0
    return augmented.T @ augmented / len(labels), augmented.T @ signs / len(labels)


def _gradients(features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-round gradients ``g = -v/2 + A w~ / 4`` of the mean Taylor loss, by autograd."""
    augmented = torch.cat([features, torch.ones(features.shape[0], 1)], dim=1).double()
    signs = 2.0 * labels.double() - 1.0
    rows = []
    for weight in weights:
        point = weight.clone().requires_grad_(True)
        logit = augmented @ point
        loss = (np.log(2.0) - signs * logit / 2.0 + logit**2 / 8.0).mean()
        rows.append(torch.autograd.grad(loss, point)[0])
    return torch.stack(rows)


def _random_records(records: int, features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    data = (torch.rand(records, features + 1, generator=generator) < 0.5).float()
    return data[:, :features], data[:, features].long()


def _models(rounds: int, features: int, seed: int) -> torch.Tensor:
    return torch.randn(rounds, features + 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize("features", [1, 3, 8, 16])
def test_minimum_rounds_determine_the_statistics_and_one_fewer_does_not(features: int) -> None:
    inputs, labels = _random_records(6, features, seed=features)
    weights = _models(minimum_rounds(features), features, seed=1)
    gradients = _gradients(inputs, labels, weights)

    enough = fit_statistics(weights, gradients)
    too_few = fit_statistics(weights[:-1], gradients[:-1])

    assert enough.is_determined and not too_few.is_determined
    assert minimum_rounds(features) <= features + 1


def test_the_fit_recovers_the_exact_statistics() -> None:
    inputs, labels = _random_records(7, 5, seed=0)
    weights = _models(9, 5, seed=2)

    fit = fit_statistics(weights, _gradients(inputs, labels, weights))

    second, label = _statistics(inputs, labels)
    assert torch.allclose(fit.second_moment, second, atol=1e-10)
    assert torch.allclose(fit.label_moment, label, atol=1e-10)
    assert fit.residual < 1e-12 and fit.rounds_used == 9 and fit.num_unknowns == 21


def test_models_on_one_line_leave_the_statistics_undetermined() -> None:
    inputs, labels = _random_records(3, 4, seed=1)
    direction = _models(1, 4, seed=3)[0]
    weights = torch.stack([step * direction for step in torch.linspace(0.1, 1.0, 12, dtype=torch.float64)])

    fit = fit_statistics(weights, _gradients(inputs, labels, weights))

    assert not fit.is_determined


def test_fit_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="rounds, d\\+1"):
        fit_statistics(torch.zeros(3, 4), torch.zeros(3, 5))


# ---------------------------------------------------------------- count and Gram matrix


def test_the_record_count_is_the_smallest_that_makes_the_counts_integral() -> None:
    inputs, labels = _random_records(6, 4, seed=4)
    weights = _models(8, 4, seed=5)
    fit = fit_statistics(weights, _gradients(inputs, labels, weights))

    inferred = infer_num_samples(fit)
    given_right = infer_num_samples(fit, num_samples=6)
    given_wrong = infer_num_samples(fit, num_samples=5)

    assert (inferred.num_samples, inferred.is_inferred) == (6, True) and inferred.integrality_error < 1e-8
    assert (given_right.num_samples, given_right.is_inferred) == (6, False)
    assert given_wrong.num_samples is None and given_wrong.integrality_error > 0.2


def test_the_gram_matrix_holds_the_record_counts() -> None:
    inputs, labels = _random_records(9, 5, seed=6)
    weights = _models(10, 5, seed=7)
    fit = fit_statistics(weights, _gradients(inputs, labels, weights))

    gram = record_gram(fit, 9)

    assert torch.equal(gram, _gram(torch.cat([inputs, labels[:, None].float()], dim=1)))
