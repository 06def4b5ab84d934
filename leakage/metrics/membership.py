"""Membership-inference figures that hold at low false-positive rates, with the counts behind them.

An AUC averages over every threshold, including the useless ones; what a membership
attack is worth shows at low false-positive rates (Carlini et al., S&P 2022). Each
figure here comes with the counts it rests on, because a "TPR at 0.1% FPR" measured on
300 non-members is a TPR at 0% FPR: no threshold can realise 0.1% on so few.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leakage.errors import ConfigError

__all__ = ["LOW_FPRS", "TprAtFpr", "membership_figures", "tpr_at_fpr"]

#: The false-positive rates a membership row reports: 0.01%, 0.1% and 1%.
LOW_FPRS: tuple[float, ...] = (1e-4, 1e-3, 1e-2)


@dataclass(frozen=True)
class TprAtFpr:
    """The best true-positive rate at a false-positive rate no higher than ``target_fpr``.

    Attributes:
        target_fpr: the rate asked for.
        tpr: true positives over members at the chosen threshold.
        fpr: the realised false-positive rate (at most ``target_fpr``; 0 when the
            non-members are too few to realise the target).
        true_positives, members, false_positives, non_members: the counts behind them.
    """

    target_fpr: float
    tpr: float
    fpr: float
    true_positives: int
    members: int
    false_positives: int
    non_members: int


def tpr_at_fpr(labels: Sequence[int], scores: Sequence[float], target_fpr: float) -> TprAtFpr:
    """Return the highest TPR over thresholds ``score >= t`` whose FPR is at most ``target_fpr``.

    Among thresholds with the same TPR, the lowest FPR is reported.

    >>> figure = tpr_at_fpr([1, 1, 0, 0, 0, 0], [0.9, 0.4, 0.8, 0.3, 0.2, 0.1], 0.25)
    >>> figure.tpr, figure.fpr, figure.false_positives
    (1.0, 0.25, 1)
    """
    truth = np.asarray(labels, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64)
    if truth.shape != values.shape or truth.ndim != 1:
        raise ConfigError(f"labels and scores must be two lists of one length, got {truth.shape} and {values.shape}")
    members, non_members = int((truth == 1).sum()), int((truth == 0).sum())
    if members == 0 or non_members == 0 or members + non_members != truth.size:
        raise ConfigError(f"labels must hold 1 (member) and 0 (non-member), both, got {members} and {non_members}")
    if not 0 <= target_fpr < 1:
        raise ConfigError(f"target_fpr must be in [0, 1), got {target_fpr}")
    order = np.argsort(-values, kind="stable")
    sorted_values, sorted_truth = values[order], truth[order]
    true_positives = np.cumsum(sorted_truth == 1)
    false_positives = np.cumsum(sorted_truth == 0)
    # a threshold sits between distinct scores: only the last of a run of ties counts
    last_of_tie = np.append(sorted_values[1:] != sorted_values[:-1], True)
    allowed = last_of_tie & (false_positives <= target_fpr * non_members)
    if not allowed.any():
        return TprAtFpr(target_fpr, 0.0, 0.0, 0, members, 0, non_members)
    best = int(np.flatnonzero(allowed)[np.argmax(true_positives[allowed])])
    tp, fp = int(true_positives[best]), int(false_positives[best])
    return TprAtFpr(target_fpr, tp / members, fp / non_members, tp, members, fp, non_members)


def membership_figures(
    labels: Sequence[int], scores: Sequence[float], fprs: Sequence[float] = LOW_FPRS
) -> dict[str, float]:
    """Flat figures for a report row: per target FPR, the TPR, the realised FPR and the counts.

    >>> sorted(membership_figures([1, 0], [1.0, 0.0], fprs=(0.01,)))
    ['false_positives@0.01', 'fpr@0.01', 'tpr@0.01', 'true_positives@0.01']
    """
    figures: dict[str, float] = {}
    for target in fprs:
        figure = tpr_at_fpr(labels, scores, target)
        key = f"{target:g}"
        figures[f"tpr@{key}"] = figure.tpr
        figures[f"fpr@{key}"] = figure.fpr
        figures[f"true_positives@{key}"] = float(figure.true_positives)
        figures[f"false_positives@{key}"] = float(figure.false_positives)
    return figures
