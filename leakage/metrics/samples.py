"""One-to-one matching of recovered samples with the originals when their counts differ.

An attack that pulls samples out of an aggregate (imprint, trap weights) returns some
number ``M`` of estimates for ``n`` originals: fewer (samples lost in shared bins) or
more (duplicates, mixtures). :func:`match_samples` pairs them one to one at least total
squared error (the rectangular Hungarian problem), so no estimate counts twice, and
scores each pair by PSNR; :func:`leakage.metrics.match_reconstructions` is the square case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

# scipy ships no type stubs; unused-ignore keeps mypy quiet once stubs or an override exist.
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped, unused-ignore]
from torch import Tensor

from leakage.errors import ConfigError
from leakage.metrics.image import psnr

__all__ = ["SampleMatch", "match_samples"]


@dataclass(frozen=True)
class SampleMatch:
    """Estimates paired one to one with originals (rectangular Hungarian matching on MSE).

    Attributes:
        assignment: ``[n]`` the estimate matched to each original, ``-1`` when there
            were fewer estimates than originals and this one got none.
        psnr: ``[n]`` float64 PSNR in dB of each original against its estimate
            (``-inf`` when unmatched, ``inf`` when exact).
    """

    assignment: Tensor
    psnr: Tensor

    def fraction_recovered(self, threshold_db: float = 30.0, originals: Tensor | None = None) -> float:
        """Return the fraction of originals (or of the ``originals`` positions given) above ``threshold_db``.

        >>> SampleMatch(torch.tensor([0, -1]), torch.tensor([40.0, -math.inf])).fraction_recovered()
        0.5
        """
        values = self.psnr if originals is None else self.psnr[originals]
        return float((values >= threshold_db).double().mean()) if values.numel() else 0.0


def match_samples(estimates: Tensor, originals: Tensor, *, data_range: float) -> SampleMatch:
    """Return the one-to-one pairing of ``estimates`` ``[M, ...]`` with ``originals`` ``[n, ...]`` of least total MSE.

    ``M`` and ``n`` may differ (``scipy.optimize.linear_sum_assignment`` on the
    rectangular cost), so neither a repeated estimate nor a missing one is counted
    twice; each pair is then scored with :func:`leakage.metrics.psnr` on raw values.

    Raises:
        ConfigError: the per-sample shapes differ or ``data_range`` is not > 0.

    >>> originals = torch.tensor([[0.0], [1.0], [0.5]])
    >>> match = match_samples(torch.tensor([[1.0], [0.0]]), originals, data_range=1.0)
    >>> match.assignment.tolist(), match.fraction_recovered()
    ([1, 0, -1], 0.6666666666666666)
    """
    if estimates.shape[1:] != originals.shape[1:]:
        raise ConfigError(f"estimates and originals must share the per-sample shape, got "
                          f"{tuple(estimates.shape[1:])} and {tuple(originals.shape[1:])}")
    if not (math.isfinite(data_range) and data_range > 0):
        raise ConfigError(f"data_range must be a finite number > 0, got {data_range!r}")
    count = int(originals.shape[0])
    assignment = torch.full((count,), -1, dtype=torch.int64)
    scores = torch.full((count,), -math.inf, dtype=torch.float64)
    if estimates.shape[0] == 0 or count == 0:
        return SampleMatch(assignment, scores)
    flat_estimates = torch.nan_to_num(estimates.detach().to(torch.float64).reshape(estimates.shape[0], -1),
                                      nan=1e6, posinf=1e6, neginf=-1e6)
    flat_originals = originals.detach().to(torch.float64).reshape(count, -1)
    cost = torch.cdist(flat_originals, flat_estimates, compute_mode="donot_use_mm_for_euclid_dist").square()
    rows, columns = linear_sum_assignment(cost.numpy())
    rows_t = torch.from_numpy(np.asarray(rows, dtype=np.int64))
    columns_t = torch.from_numpy(np.asarray(columns, dtype=np.int64))
    assignment[rows_t] = columns_t
    scores[rows_t] = psnr(flat_estimates[columns_t], flat_originals[rows_t], data_range=data_range).to(torch.float64)
    return SampleMatch(assignment, scores)
