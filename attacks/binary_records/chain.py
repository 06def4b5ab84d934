"""The ``binary_records`` chain: from per-round gradients to a client's 0/1 records, or a verdict.

Li, Huang, Chen, Hong, "Quantification of the Leakage in Federated Learning"
(FL-NeurIPS 2019 workshop, arXiv:1910.05467): logistic regression trained with the
second-order Taylor loss of Aono et al. (the HE-friendly loss)

    ``loss = log 2 - y z / 2 + z^2 / 8``,  ``y = 2 t - 1``,  ``z = w~ . x~``,  ``x~ = [x, 1]``,

has the gradient, for a client holding ``n`` records,

    ``g(w~) = -v / 2 + A w~ / 4``,  ``A = (1/n) sum x~ x~^T``,  ``v = (1/n) sum y x~``,

linear in the client's sufficient statistics ``(A, v)``. Every round in which an
observer sees the gradient at a known model ``w~`` gives ``d + 1`` linear equations;
enough rounds with different models determine ``(A, v)`` by least squares
(:func:`~attacks.binary_records.statistics.fit_statistics`). For 0/1 inputs ``n A`` and
``n v`` are integers, which reveals ``n``
(:func:`~attacks.binary_records.statistics.infer_num_samples`) and the integer Gram
matrix of the records ``[X, t, 1]``
(:func:`~attacks.binary_records.statistics.record_gram`), and the Gram matrix often
determines the records themselves
(:func:`~attacks.binary_records.search.search_records`). :func:`recover_records` chains
the three steps and returns a :class:`BinaryRecordsResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import torch
from torch import Tensor

from attacks.binary_records.search import search_records
from attacks.binary_records.statistics import (
    SampleCount,
    fit_statistics,
    infer_num_samples,
    minimum_rounds,
    record_gram,
)

__all__ = ["ATTACK_NAME", "BinaryRecordsResult", "BinaryRecordsStatus", "recover_records"]

#: registry name of the attack; :func:`recover_records` stamps it on its results.
ATTACK_NAME: Final = "binary_records"

BinaryRecordsStatus = Literal["recovered", "not_unique", "undetermined", "ill_conditioned"]

@dataclass(frozen=True)
class BinaryRecordsResult:
    """What ``binary_records`` recovered about one client's training records.

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
    status: BinaryRecordsStatus
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
) -> BinaryRecordsResult:
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

    def verdict(
        status: BinaryRecordsStatus, reason: str, count: SampleCount | None, **extra: float
    ) -> BinaryRecordsResult:
        return BinaryRecordsResult(
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
        recovered = BinaryRecordsResult(
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
