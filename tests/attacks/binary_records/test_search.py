"""Step 3 of ``binary_records``: every 0/1 record set with a given Gram matrix."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attacks.binary_records import search_records

# Two record sets with the same Gram matrix: the even-weight and the odd-weight rows of
# {0, 1}^3 (two features, then the label). Every column holds two ones and every pair
# of columns one common one, so the statistics cannot tell them apart.
EVEN_ROWS = [[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]]
ODD_ROWS = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]


def _gram(records: torch.Tensor) -> torch.Tensor:
    augmented = torch.cat([records.long(), torch.ones(records.shape[0], 1, dtype=torch.int64)], dim=1)
    return augmented.T @ augmented


def _random_records(records: int, features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    data = (torch.rand(records, features + 1, generator=generator) < 0.5).float()
    return data[:, :features], data[:, features].long()


def _multiset(rows: torch.Tensor) -> Counter[tuple[int, ...]]:
    return Counter(tuple(int(v) for v in row) for row in rows.tolist())


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
