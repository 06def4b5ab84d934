"""Exact recovery of binary training records from Taylor-logistic gradients.

Li, Huang, Chen, Hong, "Quantification of the Leakage in Federated Learning"
(FL-NeurIPS 2019 workshop, arXiv:1910.05467): logistic regression trained with the
second-order Taylor loss of Aono et al. (the HE-friendly loss)

    ``loss = log 2 - y z / 2 + z^2 / 8``,  ``y = 2 t - 1``,  ``z = w~ . x~``,  ``x~ = [x, 1]``,

has the gradient, for a client holding ``n`` records,

    ``g(w~) = -v / 2 + A w~ / 4``,  ``A = (1/n) sum x~ x~^T``,  ``v = (1/n) sum y x~``,

linear in the client's sufficient statistics ``(A, v)``. Every round in which an
observer sees the gradient at a known model ``w~`` gives ``d + 1`` linear equations;
enough rounds with different models determine ``(A, v)`` by least squares
(:func:`fit_statistics`). For 0/1 inputs ``n A`` and ``n v`` are integers, which
reveals ``n`` (:func:`infer_num_samples`) and the integer Gram matrix of the records
``[X, t, 1]`` (:func:`record_gram`), and the Gram matrix often determines the records
themselves (:func:`search_records`). :func:`recover_records` chains the three steps.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

__all__ = [
    "RecordRecovery",
    "RecordSearch",
    "RecoveryStatus",
    "SampleCount",
    "StatisticsFit",
    "fit_statistics",
    "infer_num_samples",
    "minimum_rounds",
    "record_gram",
    "recover_records",
    "search_records",
]

RecoveryStatus = Literal["recovered", "not_unique", "undetermined", "ill_conditioned"]
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: registry name of the attack whose results :func:`recover_records` produces.
ATTACK_NAME = "binary_logreg"
_PRIME = 2_147_483_647  # 2^31 - 1: products of two residues fit in int64
_LEVERAGE_SLACK = 1e-6  # float slack on the leverage bound (true rows meet it exactly)
_DEPENDENT_SLACK = 1e-5  # a determined coordinate must come out 0 or 1 within this
_FILTER_ROWS = 60_000  # candidate rows the column search tracks per block at most
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
    if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
        raise ValueError(f"num_features must be an integer >= 1, got {num_features!r}")
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


# ----------------------------------------------------------------------------------
# Step 3: the multiset of binary records with a given Gram matrix
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordSearch:
    """The binary record sets consistent with a Gram matrix, as far as the search got.

    Attributes:
        solutions: distinct record multisets found, each ``[n, p]`` int64 0/1 with rows
            sorted lexicographically; at most ``max_solutions`` of them.
        is_exhaustive: every record multiset was examined, so ``solutions`` are all
            there are. False when the search stopped at ``max_solutions`` solutions or
            ran out of its node budget.
        nodes: search nodes visited.
        candidate_rows: how many 0/1 rows passed the leverage filter (``-1`` when their
            enumeration outgrew ``max_frontier``; the search then runs unfiltered).
        method: ``"linear"`` (solved for row multiplicities directly), ``"search"``
            or ``"inconsistent"`` (the Gram matrix fails a necessary condition).
    """

    solutions: tuple[Tensor, ...]
    is_exhaustive: bool
    nodes: int
    candidate_rows: int
    method: Literal["linear", "search", "inconsistent"]

    @property
    def is_unique(self) -> bool:
        """True when exactly one record multiset has this Gram matrix (proven)."""
        return self.is_exhaustive and len(self.solutions) == 1

    @property
    def is_ambiguous(self) -> bool:
        """True when at least two record multisets have this Gram matrix (proven)."""
        return len(self.solutions) >= 2


class _Stop(Exception):
    """Ends the search: enough solutions, or the node budget is spent."""


def search_records(
    gram: Tensor,
    *,
    max_solutions: int = 2,
    max_nodes: int = 3_000,
    max_frontier: int = 200_000,
) -> RecordSearch:
    """Enumerate 0/1 record multisets ``M`` (``n`` rows, ``p`` columns) with ``[M, 1]`` Gram ``gram``.

    The stages are exact and never lose a record set; floating point is only used
    where a margin separates the cases (see the notes on soundness below).

    1. **Candidate rows.** For any solution the hat matrix ``[M, 1] G^+ [M, 1]^T`` is a
       projection, so every row ``r`` lies in the range of ``G`` and has leverage
       ``[r, 1]^T G^+ [r, 1] <= 1`` (``<= 1/c`` if it occurs ``c`` times). All 0/1 rows
       passing this are enumerated coordinate by coordinate with an ``LDL^T``
       factorisation in greedy smallest-pivot order (exact zero pivots from
       fraction-free elimination), pruning prefixes whose partial leverage exceeds 1.
       The filter is strong when ``n`` is near or below ``p + 1``.
    2. **Linear solve.** When the lifted candidates ``vec([r, 1][r, 1]^T)`` are linearly
       independent (certified by their rank modulo a prime) the multiplicities follow
       from one linear system, and the solution is unique.
    3. **Column search.** Otherwise the records are built column by column. Rows that
       agree on the chosen columns form blocks; a new column is a vector of per-block
       counts of ones, so each multiset is enumerated exactly once (row symmetry
       broken). The counts must reproduce the column's inner products with every chosen
       column (and their complements) and its sum, within the ranges the candidate rows
       allow. At each node all remaining columns' ranges are tightened by bounds
       propagation (a dead column ends the branch, a forced one is taken), the
       vectors of the two tightest columns are listed by meet in the middle and pruned
       against each other with their pairwise inner product, and the column with the
       fewest goes next (most constrained first). After the first solution, subsets of
       its rows are re-solved: an alternative for a subset is a second record set. The
       search stops after ``max_solutions`` solutions or ``max_nodes`` nodes (every
       propagation step counts).

    Soundness: leverage is compared with ``1 + 1e-6`` and determined coordinates with
    a ``1e-5`` slack, far above the float error on integer Gram matrices of this size,
    so no valid row is dropped; every reported record set reproduces ``gram`` exactly.

    Args:
        gram: ``[p+1, p+1]`` integer Gram matrix of ``[M, 1]`` (ones column last, so
            ``gram[-1, -1] = n``), e.g. from :func:`record_gram` with ``p = d + 1``.
        max_solutions: stop after this many distinct multisets (2 decides uniqueness).
        max_nodes: the search's node budget.
        max_frontier: give up the candidate filter when a prefix level holds more
            rows than this (a memory bound); the search then runs unfiltered.

    Raises:
        ValueError: ``gram`` is not square, or a budget is not a positive integer.

    >>> records = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    >>> augmented = torch.cat([records, torch.ones(3, 1, dtype=torch.int64)], 1)
    >>> found = search_records(augmented.T @ augmented)
    >>> found.is_unique, found.solutions[0].tolist()
    (True, [[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    """
    matrix = np.asarray(gram.detach().cpu().numpy(), dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(f"gram must be a square [p+1, p+1] matrix with p >= 1, got {tuple(matrix.shape)}")
    for name, value in (("max_solutions", max_solutions), ("max_nodes", max_nodes), ("max_frontier", max_frontier)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not _is_plausible(matrix):
        return RecordSearch((), True, 0, 0, "inconsistent")
    # Internally the ones column goes first: it is always 1 and anchors every prefix.
    order = [matrix.shape[0] - 1, *range(matrix.shape[0] - 1)]
    found = _enumerate(
        matrix[np.ix_(order, order)],
        max_solutions=max_solutions,
        max_nodes=max_nodes,
        max_frontier=max_frontier,
        may_switch=True,
    )
    for solution in found.solutions:  # every stage builds exact solutions; make a slip loud
        augmented = np.concatenate([solution, np.ones((solution.shape[0], 1), dtype=np.int64)], axis=1)
        if not np.array_equal(augmented.T @ augmented, matrix):
            raise RuntimeError("internal error: a record set found does not reproduce the Gram matrix")
    return RecordSearch(
        tuple(_canonical(solution) for solution in found.solutions),
        found.is_exhaustive,
        found.nodes,
        found.candidate_rows,
        found.method,
    )


@dataclass(frozen=True)
class _Found:
    """What :func:`_enumerate` found (records with the ones column dropped)."""

    solutions: list[IntArray]
    is_exhaustive: bool
    nodes: int
    candidate_rows: int
    method: Literal["linear", "search"]


def _enumerate(
    moments: IntArray, *, max_solutions: int, max_nodes: int, max_frontier: int, may_switch: bool
) -> _Found:
    """Candidate rows, then the linear solve or the column search (ones column first)."""
    filtered = _candidate_rows(moments, max_frontier)
    if filtered is not None:
        rows, _ = filtered
        direct = _solve_multiplicities(moments, rows)
        if direct is not None:
            return _Found([] if direct.size == 0 else [direct], True, 0, len(rows), "linear")
    candidates = -1 if filtered is None else len(filtered[0])
    if candidates > _FILTER_ROWS:
        filtered = None  # too many to track per block: the search runs unfiltered
    search = _ColumnSearch(
        moments, filtered, max_solutions=max_solutions, max_nodes=max_nodes, may_switch=may_switch
    )
    solutions, exhaustive = search.run()
    return _Found(solutions, exhaustive, search.nodes, candidates, "search")


def _canonical(records: IntArray) -> Tensor:
    """Rows sorted lexicographically, as an int64 tensor."""
    if records.shape[0] == 0:
        return torch.from_numpy(records.astype(np.int64))
    keys = tuple(records[:, j] for j in range(records.shape[1] - 1, -1, -1))
    return torch.from_numpy(records[np.lexsort(keys)].astype(np.int64))


def _is_plausible(gram: IntArray) -> bool:
    """Necessary conditions for a Gram matrix of 0/1 columns plus a ones column (last)."""
    n = int(gram[-1, -1])
    sums = gram[-1, :-1]
    body = gram[:-1, :-1]
    if n < 1 or not np.array_equal(gram, gram.T) or not np.array_equal(np.diag(body), sums):
        return False
    if sums.min() < 0 or sums.max() > n or body.min() < 0:
        return False
    smaller = np.minimum(sums[:, None], sums[None, :])
    union = sums[:, None] + sums[None, :] - body
    return bool((body <= smaller).all() and (union <= n).all())


def _pivot_order(moments: IntArray) -> tuple[list[int], set[int]]:
    """Greedy smallest-pivot order of symmetric elimination, with exact zero pivots.

    Fraction-free (Bareiss) elimination keeps every Schur-complement diagonal as an
    exact integer (a principal minor), so a column in the span of the earlier ones is
    recognised exactly. Column 0 (the ones column) goes first.
    """
    size = moments.shape[0]
    work = [[int(value) for value in row] for row in moments]
    order: list[int] = []
    dependent: set[int] = set()
    remaining = list(range(size))
    previous = 1
    pivot = 0  # the ones column: its pivot is n >= 1
    while remaining:
        if order:
            zero = [j for j in remaining if work[j][j] == 0]
            for j in zero:  # determined by the earlier columns: the strongest pruning
                order.append(j)
                dependent.add(j)
                remaining.remove(j)
            if not remaining:
                break
            pivot = min(remaining, key=lambda j: work[j][j])
        order.append(pivot)
        remaining.remove(pivot)
        head = work[pivot][pivot]
        for i in remaining:
            factor = work[i][pivot]
            row = work[i]
            top = work[pivot]
            for j in remaining:
                row[j] = (head * row[j] - factor * top[j]) // previous
        previous = head
    return order, dependent


def _ldl(moments: IntArray, order: list[int], dependent: set[int]) -> tuple[FloatArray, FloatArray]:
    """Return unit lower ``L`` and pivots ``D`` of the reordered moments (0 where dependent)."""
    size = len(order)
    schur = moments[np.ix_(order, order)].astype(np.float64)
    lower = np.eye(size)
    pivots = np.zeros(size)
    for position, column in enumerate(order):
        if column in dependent:
            continue
        pivots[position] = schur[position, position]
        multipliers = schur[position + 1 :, position] / pivots[position]
        lower[position + 1 :, position] = multipliers
        schur[position + 1 :, position + 1 :] -= np.outer(multipliers, schur[position, position + 1 :])
    return lower, pivots


def _candidate_rows(moments: IntArray, max_frontier: int) -> tuple[IntArray, IntArray] | None:
    """Return every 0/1 row meeting the leverage bound, with its multiplicity cap.

    Coordinates are decided in pivot order; ``e_k = x_k - sum_{j<k} L[k, j] e_j`` are
    the residuals of the ``LDL^T`` factorisation and the leverage is
    ``sum_k e_k^2 / D_k``, a sum of non-negative terms, so a prefix over the bound has
    no valid completion. Determined coordinates (``D_k = 0``) must have ``e_k = 0``.

    Returns:
        ``(rows [C, p] in original column order, caps [C])`` or ``None`` if a level
        exceeded ``max_frontier`` prefixes.
    """
    order, dependent = _pivot_order(moments)
    lower, pivots = _ldl(moments, order, dependent)
    size = len(order)
    residuals = np.ones((1, 1))
    values = np.ones((1, 1), dtype=np.int8)
    leverage = np.array([1.0 / pivots[0]])
    for position in range(1, size):
        predicted = residuals @ lower[position, :position]
        children = []
        for bit in (0, 1):
            error = bit - predicted
            if pivots[position] > 0:
                grown = leverage + error * error / pivots[position]
                keep = grown <= 1.0 + _LEVERAGE_SLACK
                error_kept = error[keep]
            else:
                keep = np.abs(error) <= _DEPENDENT_SLACK
                grown = leverage
                error_kept = np.zeros(int(keep.sum()))
            column = np.full((int(keep.sum()), 1), bit, dtype=np.int8)
            children.append((values[keep], column, residuals[keep], error_kept, grown[keep]))
        values = np.concatenate([np.concatenate([v, c], axis=1) for v, c, _, _, _ in children])
        residuals = np.concatenate([np.concatenate([r, e[:, None]], axis=1) for _, _, r, e, _ in children])
        leverage = np.concatenate([g for _, _, _, _, g in children])
        if values.shape[0] > max_frontier:
            return None
    rows = np.empty_like(values)
    rows[:, order] = values
    caps = np.floor(1.0 / np.maximum(leverage, 1e-12) + _LEVERAGE_SLACK).astype(np.int64)
    n = int(moments[0, 0])
    return rows[:, 1:].astype(np.int64), np.clip(caps, 1, n)


def _lift(rows: IntArray) -> IntArray:
    """``[C, E]`` upper triangles of ``[1, r][1, r]^T`` (the moments one row contributes)."""
    augmented = np.concatenate([np.ones((rows.shape[0], 1), dtype=np.int64), rows], axis=1)
    upper = np.triu_indices(augmented.shape[1])
    lifted: IntArray = augmented[:, upper[0]] * augmented[:, upper[1]]
    return lifted


def _solve_multiplicities(moments: IntArray, rows: IntArray) -> IntArray | None:
    """Solve ``sum_c h_c lift(c) = moments`` when the lifted candidates are independent.

    Returns the unique record multiset (an empty array when no non-negative integer
    solution exists), or ``None`` when the candidates are dependent (or too many) and
    the column search must decide.
    """
    lifted = _lift(rows)
    target = moments[np.triu_indices(moments.shape[0])]
    if rows.shape[0] == 0:
        return np.zeros((0, moments.shape[0] - 1), dtype=np.int64)
    if rows.shape[0] > lifted.shape[1] or not _has_full_row_rank_mod_prime(lifted):
        return None
    solution, *_ = np.linalg.lstsq(lifted.T.astype(np.float64), target.astype(np.float64), rcond=None)
    counts = np.round(solution).astype(np.int64)
    if counts.min() < 0 or not np.array_equal(counts @ lifted, target):
        return np.zeros((0, moments.shape[0] - 1), dtype=np.int64)
    return np.repeat(rows, counts, axis=0)


def _has_full_row_rank_mod_prime(matrix: IntArray) -> bool:
    """True if the rows are independent modulo a prime (which implies it over the rationals)."""
    work = matrix % _PRIME
    rows, cols = work.shape
    row = 0
    for col in range(cols):
        if row == rows:
            break
        nonzero = np.flatnonzero(work[row:, col]) + row
        if nonzero.size == 0:
            continue
        swap = int(nonzero[0])
        work[[row, swap]] = work[[swap, row]]
        inverse = pow(int(work[row, col]), _PRIME - 2, _PRIME)
        work[row] = work[row] * inverse % _PRIME
        below = work[row + 1 :, col].copy()
        work[row + 1 :] = (work[row + 1 :] - below[:, None] * work[row][None, :]) % _PRIME
        row += 1
    return bool(row == rows)


# ----------------------------------------------------------------------------------
# The whole chain
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordRecovery:
    """What the binary-record attack recovered about one client's training records.

    Attributes:
        attack: the attack's registry name.
        status: ``"recovered"`` (the statistics determine the records and they are
            returned), ``"not_unique"`` (two different record sets have these
            statistics: nothing is claimed), ``"undetermined"`` (the search ran out of
            its node budget), ``"ill_conditioned"`` (the statistics are not exact: too
            few or too similar rounds, non-integral counts, or no 0/1 record set fits).
        features: ``[n, d]`` 0/1 float features of the records when recovered, else ``None``.
        labels: ``[n]`` int64 class ids (0/1) when recovered, else ``None``.
        num_samples: ``n`` (given, disclosed or inferred), ``None`` if undetermined.
        rounds_used: rounds whose uploads entered the fit.
        condition_number: of the equilibrated least-squares design.
        integrality_error: largest distance of a record count from an integer at ``n``.
        assumptions: what the attack assumed rather than saw.
        seconds: wall time.
        reason: the status in words.
        details: numbers behind the status (residual, rank, search nodes...).
    """

    attack: str
    status: RecoveryStatus
    features: Tensor | None
    labels: Tensor | None
    num_samples: int | None
    rounds_used: int
    condition_number: float
    integrality_error: float
    assumptions: tuple[str, ...] = ()
    seconds: float = 0.0
    reason: str = ""
    details: Mapping[str, float] = field(default_factory=dict)

    @property
    def is_recovered(self) -> bool:
        """True when the records were recovered (and are provably the only ones)."""
        return self.status == "recovered"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the recovered records included as lists."""
        return {
            "attack": self.attack,
            "status": self.status,
            "features": None if self.features is None else self.features.tolist(),
            "labels": None if self.labels is None else self.labels.tolist(),
            "num_samples": self.num_samples,
            "rounds_used": self.rounds_used,
            "condition_number": self.condition_number,
            "integrality_error": self.integrality_error,
            "assumptions": list(self.assumptions),
            "seconds": self.seconds,
            "reason": self.reason,
            **dict(self.details),
        }


def recover_records(
    weights: Tensor,
    gradients: Tensor,
    *,
    num_samples: int | None = None,
    max_samples: int = 1000,
    integrality_tolerance: float = 0.2,
    max_condition: float = 1e8,
    max_residual: float = 1e-3,
    max_uncertainty: float = 0.1,
    max_nodes: int = 3_000,
    assumptions: Sequence[str] = (),
) -> RecordRecovery:
    """Recover a client's 0/1 records from its Taylor-logistic gradients over several rounds.

    Chains :func:`fit_statistics`, :func:`infer_num_samples`, :func:`record_gram` and
    :func:`search_records` (Li et al. 2019, arXiv:1910.05467), and says which step
    failed instead of returning records it cannot vouch for.

    Args:
        weights: ``[R, d+1]`` effective weights ``w~ = [w, c]`` (``W[1] - W[0]`` of a
            two-output model) at which the gradients were taken.
        gradients: ``[R, d+1]`` gradients of the client's mean Taylor loss in ``w~``.
        num_samples: the client's record count, if known; else inferred.
        max_samples: the largest record count tried when inferring it.
        integrality_tolerance: accepted distance of a record count from an integer.
        max_condition: larger condition numbers of the fit count as ill-conditioned.
        max_residual: larger relative residuals mean the model does not fit (inputs
            not 0/1, not the Taylor loss, or different records in different rounds).
        max_uncertainty: the largest accepted standard error of a record count
            (``n`` times the fit's standard error): beyond it rounding may pick the
            wrong integer even when the counts look integral.
        max_nodes: node budget of the record search.
        assumptions: assumptions made upstream, reported with the result.

    >>> x = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]])  # [x, 1]
    >>> t = torch.tensor([1.0, 0.0])
    >>> A, v = x.T @ x / 2, x.T @ (2 * t - 1) / 2
    >>> w = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    >>> found = recover_records(w, -v / 2 + w @ A / 4)
    >>> found.status, found.features.tolist(), found.labels.tolist()
    ('recovered', [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]], [0, 1])
    """
    said = list(assumptions)
    fit = fit_statistics(weights, gradients)
    d = fit.num_features
    base: dict[str, float] = {
        "residual": fit.residual,
        "rank": float(fit.rank),
        "unknowns": float(fit.num_unknowns),
        "minimum_rounds": float(minimum_rounds(d)),
    }

    def verdict(status: RecoveryStatus, reason: str, count: SampleCount | None, **extra: float) -> RecordRecovery:
        return RecordRecovery(
            attack=ATTACK_NAME,
            status=status,
            features=None,
            labels=None,
            num_samples=None if count is None else count.num_samples,
            rounds_used=fit.rounds_used,
            condition_number=fit.condition_number,
            integrality_error=math.nan if count is None else count.integrality_error,
            assumptions=tuple(said),
            reason=reason,
            details={**base, **extra},
        )

    if not fit.is_determined:
        return verdict(
            "ill_conditioned",
            f"{fit.rounds_used} rounds determine only {fit.rank} of the {fit.num_unknowns} unknown statistics; "
            f"at least {minimum_rounds(d)} rounds with different models are needed",
            None,
        )
    if fit.condition_number > max_condition:
        return verdict(
            "ill_conditioned",
            f"the rounds' models are nearly collinear (condition number {fit.condition_number:.3g} > "
            f"{max_condition:.3g}): the statistics are not exact",
            None,
        )
    if fit.residual > max_residual:
        return verdict(
            "ill_conditioned",
            f"the gradients do not fit the model (relative residual {fit.residual:.3g} > {max_residual:.3g}): "
            "inputs not 0/1, another loss, or different records in different rounds",
            None,
        )
    count = infer_num_samples(fit, num_samples=num_samples, max_samples=max_samples, tolerance=integrality_tolerance)
    if count.num_samples is None:
        which = f"n = {num_samples}" if num_samples is not None else f"any n <= {max_samples}"
        return verdict(
            "ill_conditioned",
            f"the record counts are not integral for {which} (error {count.integrality_error:.3g} > "
            f"{integrality_tolerance}): the statistics are not exact",
            count,
        )
    n = count.num_samples
    uncertainty = n * fit.standard_error
    base["count_uncertainty"] = uncertainty
    if uncertainty > max_uncertainty:
        return verdict(
            "ill_conditioned",
            f"the record counts are only known to +-{uncertainty:.3g} (> {max_uncertainty}): too little "
            "variation between the rounds' models to round them safely",
            count,
        )
    if count.is_inferred:
        said.append(
            f"n = {n} records inferred as the smallest count making n A and n v integral "
            f"(k n records with each repeated k times fit as well)"
        )
    started = time.perf_counter()
    search = search_records(record_gram(fit, n), max_nodes=max_nodes)
    extra = {
        "search_nodes": float(search.nodes),
        "candidate_rows": float(search.candidate_rows),
        "solutions_found": float(len(search.solutions)),
        "search_exhaustive": float(search.is_exhaustive),
        "search_seconds": time.perf_counter() - started,
    }
    if search.is_unique:
        records = search.solutions[0]
        recovered = RecordRecovery(
            attack=ATTACK_NAME,
            status="recovered",
            features=records[:, :d].to(torch.float32),
            labels=records[:, d].to(torch.int64),
            num_samples=n,
            rounds_used=fit.rounds_used,
            condition_number=fit.condition_number,
            integrality_error=count.integrality_error,
            assumptions=tuple(said),
            reason=f"the statistics determine the {n} records: exactly one 0/1 record set has them",
            details={**base, **extra},
        )
        return recovered
    if search.is_ambiguous:
        return verdict(
            "not_unique", f"at least two different sets of {n} records have these statistics", count, **extra
        )
    if search.is_exhaustive:
        return verdict(
            "ill_conditioned",
            f"no set of {n} 0/1 records has the rounded statistics: they are not exact",
            count,
            **extra,
        )
    found = "one record set was found but its uniqueness not proven" if search.solutions else "no record set was found"
    return verdict("undetermined", f"the search spent its {max_nodes} nodes: {found}", count, **extra)


# ----------------------------------------------------------------------------------
# The column search
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Blocks:
    """Rows grouped by their values on the chosen columns (one search node)."""

    sizes: IntArray  # [B]
    patterns: IntArray  # [B, t] values on the chosen columns, in choice order
    chosen: list[int]
    members: IntArray | None  # [C]: the block whose pattern each candidate row extends, or -1


class _ColumnSearch:
    """Depth-first column-by-column enumeration of record multisets (one call's state).

    At every node the remaining columns' per-block count ranges are tightened together
    by bounds propagation: a column left without a range ends the branch, one left
    with a single vector is taken at once. Otherwise the vectors of the tightest
    columns are listed by meet in the middle (or counted on a residual graph) and the
    column with the fewest goes next; when none can be listed, the tightest one is
    walked lazily by propagation. Every node and propagation step counts against
    ``max_nodes``.
    """

    _COUNTED_COLUMNS = 2  # columns per node whose vectors are counted exactly
    _STATES = 2_000  # residuals per level above which a column's graph is not built
    _LISTED = 4_096  # list a column's vectors at once up to this many, else walk them
    _HALF = 4_096  # largest half-box the meet in the middle enumerates
    _PAIRS = 20_000  # vector pairs of two listed columns checked against each other at most
    _SWITCH_NODES = 300  # node budget of each sub-search looking for a second solution
    _SWITCH_FRONTIER = 50_000  # candidate-row frontier bound of those sub-searches

    def __init__(
        self,
        moments: IntArray,
        filtered: tuple[IntArray, IntArray] | None,
        *,
        max_solutions: int,
        max_nodes: int,
        may_switch: bool,
    ) -> None:
        self.moments = moments  # ones column first
        self.may_switch = may_switch  # False in the sub-searches of _switch
        self.n = int(moments[0, 0])
        self.width = moments.shape[0] - 1
        self.max_solutions = max_solutions
        self.max_nodes = max_nodes
        self.nodes = 0
        self.solutions: list[IntArray] = []
        self.filtered = filtered
        if filtered is not None:
            rows, caps = filtered
            self.weighted_rows = rows * caps[:, None]  # capacity each candidate adds per column

    def run(self) -> tuple[list[IntArray], bool]:
        """Return the solutions found and whether the search space was exhausted."""
        root = _Blocks(
            sizes=np.array([self.n], dtype=np.int64),
            patterns=np.zeros((1, 0), dtype=np.int64),
            chosen=[],
            members=None if self.filtered is None else np.zeros(self.filtered[0].shape[0], dtype=np.int64),
        )
        try:
            self._visit(root, list(range(self.width)))
        except _Stop:
            return self.solutions, False
        return self.solutions, True

    def _tick(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _Stop

    def _membership(self, blocks: _Blocks) -> tuple[IntArray, IntArray]:
        """Indices of the candidates extending some block, and ``[C', B]`` 0/1 membership."""
        assert blocks.members is not None
        alive = np.flatnonzero(blocks.members >= 0)
        onehot = (blocks.members[alive, None] == np.arange(blocks.sizes.size)[None, :]).astype(np.int64)
        return alive, onehot

    def _bounds(self, blocks: _Blocks, columns: list[int]) -> tuple[IntArray, IntArray]:
        """``[C, B]`` ranges of each block's count of ones per column that the candidate rows allow."""
        sizes = np.broadcast_to(blocks.sizes, (len(columns), blocks.sizes.size))
        if self.filtered is None or blocks.members is None:
            return np.zeros_like(sizes), sizes.copy()
        alive, onehot = self._membership(blocks)
        caps = self.filtered[1][alive]
        # float products are exact for these small integers and run on BLAS
        ones = _integer_product(onehot.T, self.weighted_rows[alive][:, columns]).T  # [C, B] capacity with a 1
        total = _integer_product(onehot.T, caps[:, None])[:, 0]  # [B]
        high = np.minimum(sizes, ones)
        low = np.maximum(0, sizes - (total[None, :] - ones))
        return low, high

    def _goals(self, blocks: _Blocks, columns: list[int]) -> IntArray:
        """``[C, 2t+1]`` targets: inner products with the chosen columns, their complements, the sum."""
        chosen = [c + 1 for c in blocks.chosen]
        columns_ = [c + 1 for c in columns]
        inner = self.moments[np.ix_(columns_, chosen)]
        totals = self.moments[columns_, 0][:, None]
        goals: IntArray = np.concatenate([inner, totals - inner, totals], axis=1)
        return goals

    def _visit(self, blocks: _Blocks, remaining: list[int]) -> None:
        self._tick()
        if not remaining:
            self._record(blocks)
            return
        choice = self._choose(blocks, remaining)
        if choice is None:
            return  # some column cannot be completed: dead end
        column, options = choice
        rest = [c for c in remaining if c != column]
        for counts in options:
            self._visit(self._split(blocks, column, counts), rest)

    def _choose(self, blocks: _Blocks, remaining: list[int]) -> tuple[int, Iterator[IntArray]] | None:
        """Return the most constrained column and its count vectors, or ``None`` at a dead end."""
        incidence = _incidence(blocks.patterns)
        low, high = self._bounds(blocks, remaining)
        goals = self._goals(blocks, remaining)
        low, high, feasible = _tighten(incidence, goals, low, high)
        if not feasible.all():
            return None
        volume = np.log1p(high - low).sum(axis=1)
        ranked = [int(i) for i in np.argsort(volume, kind="stable")]
        if volume[ranked[0]] == 0:  # forced: a single vector
            return remaining[ranked[0]], iter([low[ranked[0]]])
        listed: dict[int, IntArray] = {}
        for index in ranked[: self._COUNTED_COLUMNS]:
            vectors = _paired_vectors(incidence, low[index], high[index], goals[index], self._HALF, self._LISTED)
            if vectors is not None:
                if len(vectors) == 0:
                    return None
                listed[index] = vectors
        if len(listed) == 2 and not self._prune_pair(blocks, remaining, listed):
            return None
        if listed:
            index = min(listed, key=lambda key: len(listed[key]))
            return remaining[index], iter(listed[index])
        index = ranked[0]
        if float(volume[index]) > 2 * math.log(self._HALF):
            graph = _column_choices(incidence, low[index], high[index], goals[index], self._STATES)
            if graph is not None:
                return None if graph.count == 0 else (remaining[index], graph.walk(self._LISTED))
        # too many vectors everywhere: walk the tightest column by propagation
        return remaining[index], _iterate_vectors(incidence, low[index], high[index], goals[index], self._tick)

    def _prune_pair(self, blocks: _Blocks, remaining: list[int], listed: dict[int, IntArray]) -> bool:
        """Drop the vectors of two listed columns that no vector of the other can pair with.

        Columns ``a`` and ``b`` share ``G[a, b]`` ones. In a block of size ``s`` with
        ``k_a`` and ``k_b`` ones their overlap lies between ``max(0, k_a + k_b - s)`` and
        ``min(k_a, k_b)`` (narrower where the candidate rows lack some of the four value
        pairs), so a pair of vectors is compatible only if ``G[a, b]`` lies between the
        sums of these bounds (and every block's bounds are consistent). Returns False when
        a column is left without vectors.
        """
        first, second = listed
        left, right = listed[first], listed[second]
        if left.shape[0] * right.shape[0] > self._PAIRS:
            return True
        sizes = blocks.sizes[None, None, :]
        a, b = left[:, None, :], right[None, :, :]
        lowest = np.maximum(0, a + b - sizes)
        highest = np.minimum(a, b)
        if blocks.members is not None and self.filtered is not None:
            caps = self._pair_capacities(blocks, remaining[first], remaining[second])  # [4, B]: 11, 10, 01, 00
            highest = np.minimum(highest, np.minimum(caps[0], caps[3] - sizes + a + b))
            lowest = np.maximum(lowest, np.maximum(a - caps[1], b - caps[2]))
        shared = self.moments[remaining[first] + 1, remaining[second] + 1]
        fits = (lowest <= highest).all(axis=2) & (lowest.sum(axis=2) <= shared) & (shared <= highest.sum(axis=2))
        listed[first], listed[second] = left[fits.any(axis=1)], right[fits.any(axis=0)]
        return bool(len(listed[first]) and len(listed[second]))

    def _pair_capacities(self, blocks: _Blocks, first: int, second: int) -> IntArray:
        """``[4, B]``: per block, how many rows the candidates allow with values 11, 10, 01, 00."""
        assert self.filtered is not None
        alive, onehot = self._membership(blocks)
        rows, caps = self.filtered[0][alive], self.filtered[1][alive]
        x, y = rows[:, first], rows[:, second]
        kinds = np.stack([x * y, x * (1 - y), (1 - x) * y, (1 - x) * (1 - y)], axis=1) * caps[:, None]
        return _integer_product(onehot.T, kinds).T

    def _split(self, blocks: _Blocks, column: int, ones: IntArray) -> _Blocks:
        zeros = blocks.sizes - ones
        has_one, has_zero = ones > 0, zeros > 0
        patterns = np.concatenate(
            [
                np.concatenate([blocks.patterns[has_one], np.ones((int(has_one.sum()), 1), dtype=np.int64)], axis=1),
                np.concatenate([blocks.patterns[has_zero], np.zeros((int(has_zero.sum()), 1), dtype=np.int64)], axis=1),
            ]
        )
        members = None
        if blocks.members is not None and self.filtered is not None:
            # the child blocks are the kept "ones" halves, then the kept "zeros" halves
            one_index = np.where(has_one, np.cumsum(has_one) - 1, -1)
            zero_index = np.where(has_zero, int(has_one.sum()) + np.cumsum(has_zero) - 1, -1)
            parent = np.maximum(blocks.members, 0)
            moved = np.where(self.filtered[0][:, column] == 1, one_index[parent], zero_index[parent])
            members = np.where(blocks.members >= 0, moved, -1)
        return _Blocks(np.concatenate([ones[has_one], zeros[has_zero]]), patterns, [*blocks.chosen, column], members)

    def _record(self, blocks: _Blocks) -> None:
        records = np.empty((self.n, self.width), dtype=np.int64)
        records[:, blocks.chosen] = np.repeat(blocks.patterns, blocks.sizes, axis=0)
        self.solutions.append(records)
        self._after_solution()

    def _after_solution(self) -> None:
        if len(self.solutions) == 1 and self.max_solutions == 2 and self.may_switch:
            other = self._switch(self.solutions[0])
            if other is not None:
                self.solutions.append(other)
        if len(self.solutions) >= self.max_solutions:
            raise _Stop

    def _switch(self, records: IntArray) -> IntArray | None:
        """Look for a second record set by re-realising a subset of the first one's rows.

        If some rows ``S`` of a solution have a different multiset ``S'`` with the same
        Gram matrix, swapping ``S'`` in keeps the Gram matrix of all rows, so one
        solution plus an ambiguous subset proves that the records are not unique.
        Subsets are every ``k``-th row of the lexicographically sorted records, from
        the smallest size that can be ambiguous upward; each sub-search has a small
        node budget counted against this search's.
        """
        ordered = _canonical(records).numpy()
        smallest = min(self.width + 1, self.n - 1)
        for size in sorted({*range(smallest, self.n, max(1, (self.n - smallest) // 4))}):
            stride = max(1, self.n // size)
            for offset in range(min(stride, 3)):
                chosen = np.arange(offset, self.n, stride)[:size]
                if chosen.size < 2:
                    continue
                subset = ordered[chosen]
                augmented = np.concatenate([np.ones((subset.shape[0], 1), dtype=np.int64), subset], axis=1)
                budget = min(self._SWITCH_NODES, self.max_nodes - self.nodes)
                if budget <= 0:
                    return None
                inner = _enumerate(
                    augmented.T @ augmented,
                    max_solutions=2,
                    max_nodes=budget,
                    max_frontier=self._SWITCH_FRONTIER,
                    may_switch=False,
                )
                self.nodes += inner.nodes
                own = _canonical(subset).numpy()
                different = [f for f in inner.solutions if not np.array_equal(_canonical(f).numpy(), own)]
                if different:
                    rest = np.delete(ordered, chosen, axis=0)
                    return np.concatenate([rest, different[0]], axis=0)
        return None


def _incidence(patterns: IntArray) -> IntArray:
    """``[2t+1, B]`` 0/1: which blocks each equation sums (ones per chosen column, zeros, all)."""
    ones = np.ones((1, patterns.shape[0]), dtype=np.int64)
    incidence: IntArray = np.concatenate([patterns.T, 1 - patterns.T, ones], axis=0)
    return incidence


_UNREACHABLE = np.iinfo(np.int64).max // 4


def _tighten(
    incidence: IntArray, goals: IntArray, low: IntArray, high: IntArray
) -> tuple[IntArray, IntArray, NDArray[np.bool_]]:
    """Tighten ``[C, B]`` count ranges of ``C`` columns to a fixpoint of their equations.

    Column ``c`` needs ``incidence @ k = goals[c]``. For each equation ``e`` and block
    ``b`` in it, ``k_b <= low_b + (goal_e - sum_{b' in e} low_b')`` and
    ``k_b >= high_b - (sum_{b' in e} high_b' - goal_e)``. Returns the tightened ranges
    and which columns stay feasible (the ranges of infeasible ones are meaningless).
    """
    mask = incidence.astype(bool)[None, :, :]  # [1, E, B]
    feasible = np.ones(goals.shape[0], dtype=bool)
    while True:
        above = goals - low @ incidence.T  # [C, E] room above the lower bounds
        below = high @ incidence.T - goals  # room below the upper bounds
        feasible &= (above >= 0).all(axis=1) & (below >= 0).all(axis=1)
        room_up = np.where(mask, above[:, :, None], _UNREACHABLE).min(axis=1)
        room_down = np.where(mask, below[:, :, None], _UNREACHABLE).min(axis=1)
        new_high = np.minimum(high, low + np.maximum(room_up, 0))
        new_low = np.maximum(low, new_high - np.maximum(room_down, 0))
        feasible &= (new_low <= new_high).all(axis=1)
        new_low = np.where(feasible[:, None], new_low, low)
        new_high = np.where(feasible[:, None], np.maximum(new_high, new_low), high)
        if np.array_equal(new_low, low) and np.array_equal(new_high, high):
            return low, high, feasible
        low, high = new_low, new_high


@dataclass(frozen=True)
class _Choices:
    """The feasible per-block count vectors of one column, as a layered graph.

    Level ``b`` holds the distinct residuals left after deciding the first ``b`` blocks
    (in ``order``, which lists only the blocks whose count is not fixed at ``low``); a
    transition decides block ``order[b]``. Only transitions that can still reach the
    zero residual are kept, so walking the graph never backtracks.
    """

    order: IntArray
    low: IntArray
    offsets: list[IntArray]  # per level: CSR offsets of each state's live transitions
    values: list[IntArray]  # per level: the block's count on each live transition
    children: list[IntArray]  # per level: the state it leads to
    count: float  # number of vectors (float: it can be astronomically large)

    def all(self) -> IntArray:
        """Return every vector, ``[count, B]``."""
        paths = np.zeros((1, 0), dtype=np.int64)
        state = np.zeros(1, dtype=np.int64)
        for offsets, values, children in zip(self.offsets, self.values, self.children):
            begin, end = offsets[state], offsets[state + 1]
            width = end - begin
            parent = np.repeat(np.arange(state.size), width)
            edge = np.repeat(begin, width) + np.arange(int(width.sum())) - np.repeat(np.cumsum(width) - width, width)
            paths = np.concatenate([paths[parent], values[edge][:, None]], axis=1)
            state = children[edge]
        return self._unshuffle(paths)

    def walk(self, listed: int) -> Iterator[IntArray]:
        """Iterate over the vectors: listed at once when at most ``listed``, else lazily."""
        return iter(self.all()) if self.count <= listed else self.iterate()

    def iterate(self) -> Iterator[IntArray]:
        """Yield the vectors one at a time, depth first."""
        chosen = np.zeros(len(self.offsets), dtype=np.int64)

        def descend(level: int, state: int) -> Iterator[IntArray]:
            if level == len(self.offsets):
                yield self._unshuffle(chosen[None, :])[0]
                return
            offsets = self.offsets[level]
            for edge in range(int(offsets[state]), int(offsets[state + 1])):
                chosen[level] = self.values[level][edge]
                yield from descend(level + 1, int(self.children[level][edge]))

        yield from descend(0, 0)

    def _unshuffle(self, paths: IntArray) -> IntArray:
        result = np.zeros((paths.shape[0], self.low.size), dtype=np.int64)
        result[:, self.order] = paths
        out: IntArray = result + self.low[None, :]
        return out


def _column_choices(
    incidence: IntArray, low: IntArray, high: IntArray, goal: IntArray, max_states: int
) -> _Choices | None:
    """Build the graph of integer ``k`` with ``low <= k <= high`` and ``incidence @ k = goal``.

    Blocks are decided one at a time (widest range first); residuals stay between zero
    and what the remaining blocks can still add, and equal residuals are merged, so
    the work is bounded by the number of distinct residuals, not of partial vectors.
    ``incidence`` has the layout of :func:`_incidence`: ``t`` pattern rows, ``t``
    complement rows, then the total; a residual is identified by its pattern and total
    parts (the complements follow from them).

    Returns:
        The graph, or ``None`` when a level holds more than ``max_states`` residuals.
    """
    equations = incidence.T  # [B, E]
    residual = (goal - low @ equations)[None, :]
    span = high - low
    # Blocks whose count is fixed (zero span) add no level; the widest go first.
    order = np.argsort(-span, kind="stable")[: int((span > 0).sum())]
    num_levels = order.size
    equations, span = equations[order], span[order]
    capacity = np.zeros((num_levels + 1, equations.shape[1]), dtype=np.int64)
    capacity[:num_levels] = np.cumsum((equations * span[:, None])[::-1], axis=0)[::-1]
    empty = _Choices(order, low, [], [], [], 0.0)
    if (residual < 0).any() or (residual > capacity[0]).any():
        return empty
    if num_levels == 0:
        return _Choices(order, low, [], [], [], 1.0)
    chosen_columns = (incidence.shape[0] - 1) // 2
    independent = np.r_[np.arange(chosen_columns), incidence.shape[0] - 1]
    radix = _radix(capacity[0][independent] + 1)
    transitions: list[tuple[IntArray, IntArray, IntArray]] = []
    level_sizes = [1]
    for level in range(num_levels):
        row = equations[level]
        touches = np.flatnonzero(row)
        after = capacity[level + 1]
        touched = residual[:, touches]
        lowest = np.maximum((touched - after[touches]).max(axis=1), 0)
        highest = np.minimum(touched.min(axis=1), span[level])
        counts = np.maximum(highest - lowest + 1, 0)
        total = int(counts.sum())
        if total == 0:
            return empty
        parent = np.repeat(np.arange(residual.shape[0]), counts)
        value = lowest[parent] + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        child = residual[parent] - value[:, None] * row[None, :]
        feasible = (child <= after).all(axis=1)
        if not feasible.all():
            parent, value, child = parent[feasible], value[feasible], child[feasible]
            if parent.size == 0:
                return empty
        residual, index = _unique_rows(child, independent, radix)
        if residual.shape[0] > max_states:
            return None
        transitions.append((parent, value, index))
        level_sizes.append(residual.shape[0])
    # Backward pass: completions from each state; drop transitions into dead states.
    completions: FloatArray = np.ones(residual.shape[0])
    offsets: list[IntArray] = []
    values: list[IntArray] = []
    children: list[IntArray] = []
    for level in range(num_levels - 1, -1, -1):
        parent, value, index = transitions[level]
        live = completions[index] > 0
        if not live.all():
            parent, value, index = parent[live], value[live], index[live]
        size = level_sizes[level]
        completions = np.bincount(parent, weights=completions[index], minlength=size).astype(np.float64)
        by_parent = np.argsort(parent, kind="stable")
        offsets.append(np.concatenate([[0], np.cumsum(np.bincount(parent, minlength=size))]).astype(np.int64))
        values.append(value[by_parent])
        children.append(index[by_parent])
    if completions.size == 0 or completions[0] <= 0:
        return empty
    return _Choices(order, low, offsets[::-1], values[::-1], children[::-1], float(completions[0]))


def _paired_vectors(
    incidence: IntArray, low: IntArray, high: IntArray, goal: IntArray, max_half: int, max_vectors: int
) -> IntArray | None:
    """List every integer ``k`` with ``low <= k <= high`` and ``incidence @ k = goal``, by meet in the middle.

    The blocks with a free count are split into two halves of balanced box size; every
    assignment of each half is enumerated and the two lists are joined on the residual
    they leave (its pattern and total parts: the complements follow; hashed, then
    compared exactly). Returns ``[K, B]``, or ``None`` when a half-box exceeds
    ``max_half`` or more than ``max_vectors`` vectors exist.
    """
    chosen_columns = (incidence.shape[0] - 1) // 2
    independent = incidence[np.r_[np.arange(chosen_columns), incidence.shape[0] - 1]].T  # [B, t+1]
    residual_full = goal - low @ incidence.T
    empty = np.zeros((0, low.size), dtype=np.int64)
    if (residual_full < 0).any():
        return empty
    residual = residual_full[np.r_[np.arange(chosen_columns), incidence.shape[0] - 1]]
    complement = residual_full[chosen_columns : 2 * chosen_columns]
    free = np.flatnonzero(high > low)
    if free.size == 0:
        return low[None, :] if not residual_full.any() else empty
    sizes = (high - low)[free] + 1
    halves: tuple[list[int], list[int]] = ([], [])
    weights = [0.0, 0.0]
    for position in np.argsort(-sizes, kind="stable"):  # greedy balance of log box sizes
        side = 0 if weights[0] <= weights[1] else 1
        halves[side].append(int(position))
        weights[side] += math.log(float(sizes[position]))
    if max(weights) > math.log(max_half):
        return None
    left_blocks, right_blocks = free[halves[0]], free[halves[1]]
    left_values, right_values = _box(sizes[halves[0]]), _box(sizes[halves[1]])
    left_sum = _integer_product(left_values, independent[left_blocks])  # [KL, t+1]
    needed = residual[None, :] - _integer_product(right_values, independent[right_blocks])
    # a half may not overshoot any equation, complements (total minus pattern) included
    left_ok = (left_sum <= residual).all(axis=1) & (
        (left_sum[:, -1:] - left_sum[:, :-1]) <= complement
    ).all(axis=1)
    right_ok = (needed >= 0).all(axis=1) & (
        (needed[:, -1:] - needed[:, :-1]) >= residual[-1] - residual[:-1] - complement
    ).all(axis=1)
    left_values, left_sum = left_values[left_ok], left_sum[left_ok]
    right_values, needed = right_values[right_ok], needed[right_ok]
    hashing = (np.arange(residual.size, dtype=np.int64) * 2_654_435_761 + 97) | 1
    left_key, right_key = left_sum @ hashing, needed @ hashing  # int64 arithmetic wraps: a hash
    by_key = np.argsort(right_key, kind="stable")
    sorted_keys = right_key[by_key]
    start = np.searchsorted(sorted_keys, left_key, side="left")
    matches = np.searchsorted(sorted_keys, left_key, side="right") - start
    total = int(matches.sum())
    if total > 8 * max_vectors:
        return None
    left_index = np.repeat(np.arange(left_key.size), matches)
    right_index = by_key[np.repeat(start - np.cumsum(matches) + matches, matches) + np.arange(total)]
    exact = (left_sum[left_index] == needed[right_index]).all(axis=1)  # drop hash collisions
    left_index, right_index = left_index[exact], right_index[exact]
    if left_index.size > max_vectors:
        return None
    vectors = np.repeat(low[None, :], left_index.size, axis=0)
    vectors[:, left_blocks] += left_values[left_index]
    vectors[:, right_blocks] += right_values[right_index]
    return vectors


def _integer_product(left: IntArray, right: IntArray) -> IntArray:
    """``left @ right`` for small non-negative integers, computed in float64 (exact below 2^53)."""
    product: IntArray = (left.astype(np.float64) @ right.astype(np.float64)).astype(np.int64)
    return product


def _box(sizes: IntArray) -> IntArray:
    """Every integer vector ``v`` with ``0 <= v < sizes``, ``[prod(sizes), len(sizes)]`` (read-only)."""
    return _cached_box(tuple(int(size) for size in sizes))


@functools.lru_cache(maxsize=256)
def _cached_box(sizes: tuple[int, ...]) -> IntArray:
    bases = np.array(sizes, dtype=np.int64)
    strides = np.concatenate([[1], np.cumprod(bases[::-1])[:-1]])[::-1].astype(np.int64)
    total = math.prod(sizes)
    box: IntArray = (np.arange(total, dtype=np.int64)[:, None] // strides[None, :]) % bases[None, :]
    box.setflags(write=False)
    return box


def _radix(bases: IntArray) -> IntArray | None:
    """Place values that pack a vector with entries below ``bases`` into one int64, if they fit."""
    if float(np.sum(np.log2(np.maximum(bases, 1)))) >= 62:
        return None
    radix: IntArray = np.concatenate([[1], np.cumprod(bases[:-1])]).astype(np.int64)
    return radix


def _unique_rows(rows: IntArray, independent: IntArray, radix: IntArray | None) -> tuple[IntArray, IntArray]:
    """Distinct rows (told apart by their ``independent`` entries) and each row's index among them."""
    if radix is not None:
        keys = rows[:, independent] @ radix
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:
        contiguous = np.ascontiguousarray(rows)
        voids = contiguous.view(np.dtype((np.void, contiguous.dtype.itemsize * contiguous.shape[1]))).ravel()
        _, first, inverse = np.unique(voids, return_index=True, return_inverse=True)
    return rows[first], inverse.reshape(-1).astype(np.int64)


def _iterate_vectors(
    incidence: IntArray, low: IntArray, high: IntArray, goal: IntArray, on_node: Callable[[], None]
) -> Iterator[IntArray]:
    """Yield every ``k`` with ``low <= k <= high`` and ``incidence @ k = goal``, lazily.

    Used when the residual graph is too large to build: depth first over the block with
    the smallest remaining range, tightening all ranges by :func:`_tighten` at every
    node and trying values from the middle of the range outward. ``on_node`` is called
    at every node (the caller's budget).
    """
    goals = goal[None, :]

    def descend(lower: IntArray, upper: IntArray) -> Iterator[IntArray]:
        on_node()
        tight_low, tight_high, feasible = _tighten(incidence, goals, lower[None, :], upper[None, :])
        if not feasible[0]:
            return
        lower, upper = tight_low[0], tight_high[0]
        width = upper - lower
        if not width.any():
            yield lower
            return
        block = int(np.argmin(np.where(width > 0, width, _UNREACHABLE)))
        middle = (int(lower[block]) + int(upper[block])) // 2
        for step in range(int(width[block]) + 1):
            value = middle + (step + 1) // 2 if step % 2 else middle - step // 2
            if not lower[block] <= value <= upper[block]:
                continue
            fixed_low, fixed_high = lower.copy(), upper.copy()
            fixed_low[block] = fixed_high[block] = value
            yield from descend(fixed_low, fixed_high)

    yield from descend(low.copy(), high.copy())
