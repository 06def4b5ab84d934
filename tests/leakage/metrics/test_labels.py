"""Tests for positional and multiset label-recovery accuracy."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage.errors import ConfigError
from leakage.metrics import label_accuracy, label_multiset_accuracy

label_lists = st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=12)


def test_label_accuracy_counts_equal_positions() -> None:
    predicted = torch.tensor([1, 2, 3, 4])
    true = torch.tensor([1, 0, 3, 0])

    assert label_accuracy(predicted, true) == 0.5


def test_label_multiset_accuracy_ignores_order_and_claims_each_label_once() -> None:
    true = torch.tensor([7, 7, 2, 0])

    shuffled = label_multiset_accuracy(torch.tensor([2, 0, 7, 7]), true)
    too_many_sevens = label_multiset_accuracy(torch.tensor([7, 7, 7, 7]), true)

    assert shuffled == 1.0
    assert too_many_sevens == 0.5


@settings(max_examples=60, deadline=None)
@given(data=st.data(), true=label_lists)
def test_label_multiset_accuracy_matches_counting_and_bounds_positional_accuracy(
    data: st.DataObject, true: list[int]
) -> None:
    predicted = data.draw(st.lists(st.integers(min_value=0, max_value=5), min_size=len(true), max_size=len(true)))
    order = data.draw(st.permutations(range(len(true))))

    multiset = label_multiset_accuracy(torch.tensor(predicted), torch.tensor(true))
    reordered = label_multiset_accuracy(torch.tensor([predicted[i] for i in order]), torch.tensor(true))
    positional = label_accuracy(torch.tensor(predicted), torch.tensor(true))

    expected = sum((Counter(predicted) & Counter(true)).values()) / len(true)
    assert multiset == pytest.approx(expected)
    assert reordered == multiset
    assert positional <= multiset + 1e-12


@pytest.mark.parametrize(
    ("predicted", "true", "message"),
    [
        (
            torch.tensor([1, 2]),
            torch.tensor([1, 2, 3]),
            "predicted and true must hold the same number of labels, got 2 and 3",
        ),
        (torch.tensor([1.0, 2.0]), torch.tensor([1, 2]), "predicted must hold integer class indices"),
        (torch.tensor([[1, 2]]), torch.tensor([1, 2]), r"predicted must be a non-empty 1-D tensor \[B\]"),
        (torch.tensor([], dtype=torch.int64), torch.tensor([], dtype=torch.int64), "non-empty"),
    ],
)
def test_label_metrics_reject_bad_labels(predicted: torch.Tensor, true: torch.Tensor, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        label_accuracy(predicted, true)
    with pytest.raises(ConfigError, match=message):
        label_multiset_accuracy(predicted, true)


def test_label_multiset_accuracy_rejects_negative_classes() -> None:
    with pytest.raises(ConfigError, match="class indices >= 0"):
        label_multiset_accuracy(torch.tensor([-1, 2]), torch.tensor([1, 2]))
