"""Steps 1 and 2 of ``binary_records``: a client's sufficient statistics from rounds, then its record counts.

Li, Huang, Chen, Hong, "Quantification of the Leakage in Federated Learning" (FL-NeurIPS
2019 workshop, arXiv:1910.05467). The Taylor-logistic gradient of a client holding ``n``
0/1 records is linear in its statistics,

    ``g(w~) = -v / 2 + A w~ / 4``,  ``A = (1/n) sum x~ x~^T``,  ``v = (1/n) sum y x~``,

so enough rounds fit ``(A, v)`` by least squares (:func:`fit_statistics`); ``n A`` and
``n v`` are integers, which gives ``n`` (:func:`infer_num_samples`) and the integer Gram
matrix of the records (:func:`record_gram`). :mod:`attacks.binary_records.chain` runs
the whole attack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from leakage.checks import require_int

__all__ = ["SampleCount", "StatisticsFit", "fit_statistics", "infer_num_samples", "minimum_rounds", "record_gram"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

_FLOAT32_EPS = 2.0**-24  # relative rounding of the float32 uploads

# ----------------------------------------------------------------------------------
# Step 1: sufficient statistics from (model, gradient) pairs
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatisticsFit:
    """The least-squares estimate of a client's sufficient statistics.

    Attributes:
        second_moment: ``A = (1/n) sum x~ x~^T``, ``[d+1, d+1]`` float64, bias last.
        label_moment: ``v = (1/n) sum y x~``, ``[d+1]`` float64, ``y`` in ``{-1, +1}``.
        rounds_used: how many (model, gradient) pairs entered the fit.
        num_unknowns: free entries of ``(A, v)`` once symmetry and the binary structure
            are imposed: ``(d+1)(d+2)/2``.
        rank: numerical rank of the (column-equilibrated) design matrix.
        condition_number: its largest over smallest singular value (``inf`` when the
            rounds do not determine the statistics).
        residual: ``||D s - b|| / ||b||``: large when the inputs are not 0/1 or the
            gradients do not come from the Taylor loss.
        standard_error: the largest standard error of a fitted statistic: the noise of
            the gradients (estimated from the misfit of redundant rounds, at least the
            float32 rounding of the uploads) through the pseudo-inverse. ``n`` times it
            is how far a record count can be off; ``inf`` when undetermined.
    """

    second_moment: Tensor
    label_moment: Tensor
    rounds_used: int
    num_unknowns: int
    rank: int
    condition_number: float
    residual: float
    standard_error: float

    @property
    def num_features(self) -> int:
        """``d``, the number of input features."""
        return int(self.label_moment.numel()) - 1

    @property
    def is_determined(self) -> bool:
        """True when the rounds pin down every unknown (full column rank)."""
        return self.rank == self.num_unknowns and math.isfinite(self.condition_number)


def minimum_rounds(num_features: int) -> int:
    """Return the fewest rounds with distinct generic models that determine ``(A, v)``.

    With ``R`` rounds the unknown symmetric part is only seen on the ``R - 1`` model
    differences (the constant ``v`` absorbs the rest), so the kernel of the design is
    the symmetric ``S`` with ``S (w_r - w_1) = 0``: ``k (k + 1) / 2`` dimensions for
    ``k = d + 2 - R``, cut down by the ``d + 1`` structural equations ``S[j, j] =
    S[j, bias]`` and ``S[bias, bias] = 0``. So ``R = d + 2 - k*`` with ``k*`` the
    largest ``k`` such that ``k (k + 1) / 2 <= d + 1`` (instead of ``d + 1`` rounds
    when only the gradient's linearity is used).

    >>> [minimum_rounds(d) for d in (1, 8, 16, 32)]
    [2, 7, 13, 27]
    """
    num_features = require_int("num_features", num_features, minimum=1)
    free = 0
    while (free + 1) * (free + 2) // 2 <= num_features + 1:
        free += 1
    return max(num_features + 2 - free, 2)


def _unknown_layout(num_features: int) -> tuple[IntArray, int, int, int]:
    """Index map of the unknowns: pairs ``A[j, k]`` (j < k < d), means ``A[j, j]``, then ``v``."""
    d = num_features
    pair_index = np.full((d, d), -1, dtype=np.int64)
    rows, cols = np.triu_indices(d, k=1)
    pair_index[rows, cols] = np.arange(rows.size)
    pair_index[cols, rows] = np.arange(rows.size)
    mean_base = int(rows.size)
    label_base = mean_base + d
    return pair_index, mean_base, label_base, label_base + d + 1


def _design(weights: FloatArray, gradients: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return ``(D [R(d+1), U], b [R(d+1)])`` with ``D s = b`` for the unknowns ``s``."""
    rounds, width = weights.shape
    d = width - 1
    pair_index, mean_base, label_base, num_unknowns = _unknown_layout(d)
    design = np.zeros((rounds, width, num_unknowns))
    rhs = gradients.copy()
    row, col = np.nonzero(~np.eye(d, dtype=bool))
    # feature row j: sum_{k != j} A[j, k] w_k + A[j, j] (w_j + w_bias)  (A[j, j] = A[j, bias])
    design[:, row, pair_index[row, col]] = weights[:, col] / 4.0
    features = np.arange(d)
    design[:, features, mean_base + features] = (weights[:, :d] + weights[:, d:]) / 4.0
    # bias row: sum_k A[bias, k] w_k + A[bias, bias] w_bias with A[bias, bias] = 1 known
    design[:, d, mean_base + features] = weights[:, :d] / 4.0
    rhs[:, d] -= weights[:, d] / 4.0
    design[:, np.arange(width), label_base + np.arange(width)] = -0.5
    return design.reshape(rounds * width, num_unknowns), rhs.reshape(-1)


def fit_statistics(weights: Tensor, gradients: Tensor) -> StatisticsFit:
    """Fit the sufficient statistics ``(A, v)`` to per-round models and gradients.

    Solves ``g_r = -v / 2 + A w~_r / 4`` for all rounds ``r`` in the least-squares
    sense, with ``A`` symmetric, ``A[bias, bias] = 1`` and ``A[j, j] = A[j, bias]``
    (``x_j^2 = x_j`` for 0/1 inputs), so ``(d+1)(d+2)/2`` unknowns remain and
    :func:`minimum_rounds` rounds suffice. Columns are equilibrated before the SVD, so
    the condition number measures how distinct the rounds' models are.

    Args:
        weights: ``[R, d+1]`` effective weights ``w~ = [w, c]`` the gradients were taken at.
        gradients: ``[R, d+1]`` gradients of the mean Taylor loss with respect to ``w~``.

    Raises:
        ValueError: the shapes disagree or are not ``[R, d+1]`` with ``d >= 1``.

    >>> x = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])  # two records [x, 1]
    >>> y = torch.tensor([1.0, -1.0])
    >>> A, v = x.T @ x / 2, x.T @ y / 2
    >>> w = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    >>> fit = fit_statistics(w, -v / 2 + w @ A / 4)
    >>> fit.is_determined, bool(torch.allclose(fit.second_moment, A.double()))
    (True, True)
    """
    if weights.ndim != 2 or weights.shape != gradients.shape or weights.shape[1] < 2:
        raise ValueError(
            f"weights and gradients must both be [rounds, d+1] with d >= 1, "
            f"got {tuple(weights.shape)} and {tuple(gradients.shape)}"
        )
    w = weights.detach().to(torch.float64).cpu().numpy()
    g = gradients.detach().to(torch.float64).cpu().numpy()
    rounds, width = w.shape
    d = width - 1
    design, rhs = _design(w, g)
    num_unknowns = design.shape[1]
    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0
    left, singular, right = np.linalg.svd(design / scale, full_matrices=False)
    tiny = singular[0] * max(design.shape) * np.finfo(np.float64).eps if singular.size else 0.0
    rank = int((singular > tiny).sum())
    inverse = np.where(singular > tiny, 1.0 / np.where(singular > tiny, singular, 1.0), 0.0)
    solution = (right.T @ (inverse * (left.T @ rhs))) / scale
    determined = design.shape[0] >= num_unknowns and rank == num_unknowns
    condition = float(singular[0] / singular[-1]) if determined else math.inf
    norm = float(np.linalg.norm(rhs))
    misfit = float(np.linalg.norm(design @ solution - rhs))
    residual = misfit / norm if norm > 0 else 0.0
    # Noise level of one gradient entry: from the misfit when rounds are redundant, and
    # at least the float32 rounding of the uploads; propagated through the pseudo-inverse.
    redundancy = max(design.shape[0] - num_unknowns, 1)
    noise = max(misfit / math.sqrt(redundancy), _FLOAT32_EPS * norm / math.sqrt(rhs.size))
    spread = np.sqrt(((right.T * inverse[None, :]) ** 2).sum(axis=1)) / scale
    standard_error = float(noise * spread.max()) if determined else math.inf
    pair_index, mean_base, label_base, _ = _unknown_layout(d)
    second = np.eye(width)
    second[:d, :d] = np.where(pair_index >= 0, solution[np.maximum(pair_index, 0)], 0.0)
    means = solution[mean_base:label_base]
    second[np.arange(d), np.arange(d)] = means
    second[:d, d] = means
    second[d, :d] = means
    return StatisticsFit(
        second_moment=torch.from_numpy(second),
        label_moment=torch.from_numpy(solution[label_base:].copy()),
        rounds_used=rounds,
        num_unknowns=num_unknowns,
        rank=int(rank),
        condition_number=condition,
        residual=residual,
        standard_error=standard_error,
    )


# ----------------------------------------------------------------------------------
# Step 2: the number of records and the integer Gram matrix
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleCount:
    """The record count ``n`` that makes ``n A`` and ``n v`` integral.

    Attributes:
        num_samples: ``n``, or ``None`` when no count up to the search limit fits.
        integrality_error: the largest distance of a record count (``n A[j, k]`` and
            the label counts ``(n v_j + n A[j, bias]) / 2``) from an integer, at
            ``num_samples`` (at the best count tried when none fits).
        is_inferred: ``n`` was inferred as the smallest fitting count, not given.
    """

    num_samples: int | None
    integrality_error: float
    is_inferred: bool


def _scaled_counts(fit: StatisticsFit, counts: FloatArray) -> FloatArray:
    """Return ``[len(counts), K]`` record counts implied by ``fit`` for each candidate ``n``."""
    second = fit.second_moment.numpy()
    label = fit.label_moment.numpy()
    upper = second[np.triu_indices(second.shape[0])][:-1]  # A[bias, bias] = 1 is exact
    positives = (label + second[:, -1]) / 2.0  # (1/n) sum t x~: label counts per column
    per_record = np.concatenate([upper, positives])
    scaled: FloatArray = counts[:, None] * per_record[None, :]
    return scaled


def infer_num_samples(
    fit: StatisticsFit,
    *,
    num_samples: int | None = None,
    max_samples: int = 1000,
    tolerance: float = 0.2,
) -> SampleCount:
    """Return the record count ``n``: the given one, else the smallest with integral counts.

    For 0/1 records ``n A`` (co-occurrence counts) and ``(n v + n A[:, bias]) / 2``
    (counts of positive labels per feature) are integers. The smallest ``n`` within
    ``tolerance`` of integrality is the answer; note that any multiple ``k n`` also
    fits when each record is repeated ``k`` times, so an inferred ``n`` is an assumption.

    Args:
        fit: from :func:`fit_statistics`.
        num_samples: a known ``n``; then only its integrality error is measured.
        max_samples: the largest ``n`` tried.
        tolerance: the largest accepted distance of a count from an integer.

    >>> x = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    >>> A, v = x.T @ x / 3, x.T @ torch.tensor([1.0, 1.0, -1.0]) / 3
    >>> w = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    >>> infer_num_samples(fit_statistics(w, -v / 2 + w @ A / 4)).num_samples
    3
    """
    if num_samples is not None:
        error = float(np.abs(_distance_to_integer(_scaled_counts(fit, np.array([float(num_samples)])))).max())
        return SampleCount(num_samples if error <= tolerance else None, error, False)
    candidates = np.arange(1, max_samples + 1, dtype=np.float64)
    errors = np.abs(_distance_to_integer(_scaled_counts(fit, candidates))).max(axis=1)
    fitting = np.flatnonzero(errors <= tolerance)
    if fitting.size == 0:
        best = int(np.argmin(errors))
        return SampleCount(None, float(errors[best]), True)
    return SampleCount(int(fitting[0]) + 1, float(errors[fitting[0]]), True)


def _distance_to_integer(values: FloatArray) -> FloatArray:
    result: FloatArray = values - np.round(values)
    return result


def record_gram(fit: StatisticsFit, num_samples: int) -> Tensor:
    """Return the integer Gram matrix ``M^T M`` of the records ``M = [X, t, 1]``.

    ``X`` are the 0/1 features, ``t`` the 0/1 labels (``t = (y + 1) / 2``), so the
    result is ``[d+2, d+2]`` int64: feature co-occurrences ``n A[:d, :d]``, label
    counts ``sum t x_j = (n v_j + n A[j, bias]) / 2``, column sums in the last row and
    ``n`` in the corner. Counts are rounded to the nearest integer.

    >>> x = torch.tensor([[1.0, 0.0, 1.0]])
    >>> A, v = x.T @ x, -x[0]  # one record [1, 0] with label 0 (y = -1)
    >>> w = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    >>> record_gram(fit_statistics(w, -v / 2 + w @ A / 4), 1).tolist()
    [[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]]
    """
    d = fit.num_features
    n = float(num_samples)
    second = np.round(n * fit.second_moment.numpy()).astype(np.int64)
    positives = np.round((n * fit.label_moment.numpy() + n * fit.second_moment.numpy()[:, -1]) / 2.0)
    gram = np.zeros((d + 2, d + 2), dtype=np.int64)
    order = [*range(d), d + 1]  # features, then the ones column; the label sits at index d
    gram[np.ix_(order, order)] = second
    gram[d, order] = positives.astype(np.int64)
    gram[order, d] = positives.astype(np.int64)
    gram[d, d] = int(positives[-1])
    gram[-1, -1] = num_samples
    return torch.from_numpy(gram)
