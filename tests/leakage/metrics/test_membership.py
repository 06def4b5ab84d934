"""TPR at low FPR, with its counts: an oracle against scikit-learn's ROC curve."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_curve

from leakage.errors import ConfigError
from leakage.metrics import membership_figures, tpr_at_fpr


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(-5, 5)), min_size=2, max_size=60).filter(
        lambda pairs: {label for label, _ in pairs} == {0, 1}
    ),
    st.sampled_from([0.0, 0.01, 0.1, 0.25, 0.5]),
)
def test_the_best_tpr_at_a_bounded_fpr_matches_the_roc_curve(pairs: list[tuple[int, int]], target: float) -> None:
    labels = [label for label, _ in pairs]
    scores = [float(score) for _, score in pairs]  # ties included
    figure = tpr_at_fpr(labels, scores, target)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert figure.tpr == pytest.approx(max(t for f, t in zip(fpr, tpr, strict=True) if f <= target + 1e-12))
    assert figure.fpr <= target + 1e-12
    assert figure.true_positives == round(figure.tpr * figure.members)
    assert figure.false_positives == round(figure.fpr * figure.non_members)


def test_too_few_non_members_cannot_realise_a_low_fpr() -> None:
    rng = np.random.default_rng(0)
    labels = [1] * 300 + [0] * 300
    scores = list(rng.normal(size=600) + np.array(labels))
    figure = tpr_at_fpr(labels, scores, 1e-3)  # 0.1% of 300 is 0.3: no false positive allowed
    assert figure.fpr == 0.0 and figure.false_positives == 0


def test_report_figures_carry_the_counts() -> None:
    figures = membership_figures([1, 1, 0, 0], [0.9, 0.1, 0.5, 0.2], fprs=(0.5,))
    # the same TPR is reached at no false positive, so that threshold is the one reported
    assert figures == {"tpr@0.5": 0.5, "fpr@0.5": 0.0, "true_positives@0.5": 1.0, "false_positives@0.5": 0.0}


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [([1, 1], [0.1, 0.2], "labels must hold 1"), ([1, 0], [0.1], "two lists of one length")],
)
def test_bad_input_is_one_line(labels: list[int], scores: list[float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tpr_at_fpr(labels, scores, 0.1)
