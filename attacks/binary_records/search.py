"""Step 3 of ``binary_records``: every multiset of 0/1 records with a given Gram matrix.

Li, Huang, Chen, Hong, "Quantification of the Leakage in Federated Learning" (FL-NeurIPS
2019 workshop, arXiv:1910.05467). For records ``M`` (``n`` rows of ``p`` 0/1 columns:
features, then the label) the statistics give ``G = [M, 1]^T [M, 1]``; this module lists
the ``M`` with that ``G``: candidate rows by a leverage bound, a certified linear solve
when they are independent, otherwise an exact column search that enumerates each
multiset once. :mod:`attacks.binary_records.chain` runs the whole attack.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from leakage.checks import require_int

__all__ = ["RecordSearch", "search_records"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

_PRIME = 2_147_483_647  # 2^31 - 1: products of two residues fit in int64
_LEVERAGE_SLACK = 1e-6  # float slack on the leverage bound (true rows meet it exactly)
_DEPENDENT_SLACK = 1e-5  # a determined coordinate must come out 0 or 1 within this
_FILTER_ROWS = 60_000  # candidate rows the column search tracks per block at most

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
            ``gram[-1, -1] = n``), e.g. from :func:`attacks.binary_records.record_gram` with ``p = d + 1``.
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
    max_solutions = require_int("max_solutions", max_solutions, minimum=1)
    max_nodes = require_int("max_nodes", max_nodes, minimum=1)
    max_frontier = require_int("max_frontier", max_frontier, minimum=1)
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
        for offsets, values, children in zip(self.offsets, self.values, self.children, strict=True):
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
