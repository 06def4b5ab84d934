"""The pure math of binary record recovery: statistics fit, record count, Gram matrix, search."""

import itertools
import json
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attacks import (
    RecordRecovery,
    fit_statistics,
    infer_num_samples,
    minimum_rounds,
    record_gram,
    recover_records,
    search_records,
)

# Two record sets with the same Gram matrix: the even-weight and the odd-weight rows of
# {0, 1}^3 (two features, then the label). Every column holds two ones and every pair
# of columns one common one, so the statistics cannot tell them apart.
EVEN_ROWS = [[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]]
ODD_ROWS = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]


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


def _multiset(rows: torch.Tensor) -> Counter[tuple[int, ...]]:
    return Counter(tuple(int(v) for v in row) for row in rows.tolist())


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


# ---------------------------------------------------------------- record search


def test_records_with_independent_lifts_are_solved_linearly_and_exactly() -> None:
    inputs, labels = _random_records(10, 16, seed=8)
    records = torch.cat([inputs, labels[:, None].float()], dim=1).long()

    found = search_records(_gram(records))

    assert found.is_unique and found.method == "linear"
    assert _multiset(found.solutions[0]) == _multiset(records)


def test_the_column_search_recovers_records_the_linear_solve_cannot() -> None:
    inputs, labels = _random_records(20, 16, seed=1)
    records = torch.cat([inputs, labels[:, None].float()], dim=1).long()

    found = search_records(_gram(records))

    assert found.method == "search" and found.is_unique
    assert _multiset(found.solutions[0]) == _multiset(records)


def test_two_record_sets_with_one_gram_matrix_are_reported_as_not_unique() -> None:
    even, odd = torch.tensor(EVEN_ROWS), torch.tensor(ODD_ROWS)
    assert torch.equal(_gram(even), _gram(odd))

    found = search_records(_gram(even))

    assert found.is_ambiguous and not found.is_unique
    assert {frozenset(_multiset(solution).items()) for solution in found.solutions} == {
        frozenset(_multiset(even).items()),
        frozenset(_multiset(odd).items()),
    }


def test_a_gram_matrix_no_binary_records_have_is_inconsistent() -> None:
    gram = _gram(torch.tensor([[1, 0], [0, 1]]))
    gram[0, 1] = gram[1, 0] = 2  # more common ones than either column holds

    found = search_records(gram)

    assert found.method == "inconsistent" and found.is_exhaustive and not found.solutions


def test_a_spent_budget_decides_nothing() -> None:
    inputs, labels = _random_records(20, 16, seed=1)
    records = torch.cat([inputs, labels[:, None].float()], dim=1).long()

    found = search_records(_gram(records), max_nodes=3)

    assert not found.is_exhaustive and not found.is_unique and not found.is_ambiguous


def test_search_rejects_a_non_square_gram_and_bad_budgets() -> None:
    with pytest.raises(ValueError, match="square"):
        search_records(torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="max_nodes"):
        search_records(_gram(torch.tensor(EVEN_ROWS)), max_nodes=0)


def _all_multisets_with_gram(gram: torch.Tensor, width: int, records: int) -> list[Counter[tuple[int, ...]]]:
    """The slow, obviously correct reference: try every multiset of rows."""
    rows = np.array([[(code >> bit) & 1 for bit in range(width)] + [1] for code in range(2**width)])
    outer = rows[:, :, None] * rows[:, None, :]
    combinations = np.array(list(itertools.combinations_with_replacement(range(2**width), records)))
    grams = outer[combinations].sum(axis=1)
    hits = np.flatnonzero((grams == gram.numpy()[None]).all(axis=(1, 2)))
    return [Counter(tuple(int(v) for v in rows[i, :-1]) for i in combinations[hit]) for hit in hits]


@settings(max_examples=80, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=4),
    records=st.integers(min_value=1, max_value=5),
    bits=st.lists(st.integers(min_value=0, max_value=1), min_size=20, max_size=20),
    filtered=st.booleans(),
)
def test_the_search_agrees_with_brute_force_enumeration(
    width: int, records: int, bits: list[int], filtered: bool
) -> None:
    chosen = torch.tensor(bits[: width * records], dtype=torch.int64).reshape(records, width)
    gram = _gram(chosen)

    found = search_records(gram, max_frontier=200_000 if filtered else 1)  # 1: no candidate-row filter

    truth = _all_multisets_with_gram(gram, width, records)
    if len(truth) == 1:
        assert found.is_unique and _multiset(found.solutions[0]) == truth[0]
    else:
        assert found.is_ambiguous
        assert all(_multiset(solution) in truth for solution in found.solutions)
        assert _multiset(found.solutions[0]) != _multiset(found.solutions[1])


# ---------------------------------------------------------------- the chain


def test_recover_records_returns_every_record_exactly() -> None:
    inputs, labels = _random_records(5, 6, seed=9)
    weights = _models(minimum_rounds(6) + 2, 6, seed=10)

    found = recover_records(weights, _gradients(inputs, labels, weights))

    assert found.status == "recovered" and found.num_samples == 5
    assert found.features is not None and found.labels is not None
    recovered = torch.cat([found.features, found.labels[:, None].float()], dim=1).long()
    assert _multiset(recovered) == _multiset(torch.cat([inputs, labels[:, None].float()], dim=1).long())
    assert any("inferred" in text for text in found.assumptions)


def test_recover_records_never_claims_an_ambiguous_record_set() -> None:
    records = torch.tensor(EVEN_ROWS, dtype=torch.float32)
    weights = _models(8, 2, seed=11)

    found = recover_records(weights, _gradients(records[:, :2], records[:, 2].long(), weights), num_samples=4)

    assert found.status == "not_unique" and found.features is None and found.labels is None


def test_recover_records_says_when_the_rounds_are_too_few() -> None:
    inputs, labels = _random_records(3, 8, seed=12)
    weights = _models(minimum_rounds(8) - 1, 8, seed=13)

    found = recover_records(weights, _gradients(inputs, labels, weights))

    assert found.status == "ill_conditioned" and found.features is None
    assert f"at least {minimum_rounds(8)} rounds" in found.reason


def test_recover_records_says_when_inputs_are_not_binary() -> None:
    inputs = torch.rand(4, 5, generator=torch.Generator().manual_seed(14))
    weights = _models(12, 5, seed=15)

    found = recover_records(weights, _gradients(inputs, torch.tensor([0, 1, 1, 0]), weights))

    assert found.status == "ill_conditioned" and "residual" in found.reason


def test_recover_records_is_deterministic_and_serialises() -> None:
    inputs, labels = _random_records(8, 6, seed=16)
    weights = _models(10, 6, seed=17)
    gradients = _gradients(inputs, labels, weights)
    before = gradients.clone()

    first = recover_records(weights, gradients)
    second = recover_records(weights, gradients)

    assert isinstance(first, RecordRecovery)
    timings = ("seconds", "search_seconds")
    assert {k: v for k, v in first.to_dict().items() if k not in timings} == {
        k: v for k, v in second.to_dict().items() if k not in timings
    }
    assert torch.equal(gradients, before)
    assert json.loads(json.dumps(first.to_dict()))["status"] == first.status
