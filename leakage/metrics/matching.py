"""Optimal one-to-one matching of a batch of reconstructions to the originals.

A batch attack returns its reconstructions in no particular order: the gradient of a
sum over samples does not depend on their order. Scoring ``reconstructions[i]``
against ``originals[i]`` would then punish a perfect attack for a shuffle, and scoring
each original against its best reconstruction would let one good reconstruction count
many times. The honest score pairs them one to one with the assignment that minimises
the total error (the Hungarian method), as in Geiping et al., "Inverting Gradients -
How easy is it to break privacy in federated learning?", NeurIPS 2020.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch

# scipy ships no type stubs; unused-ignore keeps mypy quiet once stubs or an override exist.
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped, unused-ignore]
from torch import Tensor

from leakage.checks import require_choice
from leakage.metrics._validation import check_finite, check_same_shape

__all__ = ["MatchingCost", "match_reconstructions", "pairwise_mse"]

MatchingCost = Literal["mse"]
_COSTS: tuple[str, ...] = get_args(MatchingCost)


def pairwise_mse(reconstructions: Tensor, originals: Tensor) -> Tensor:
    """Return the MSE of every original against every reconstruction, ``[B, B]`` float64.

    ``cost[i, j] = mean_k (originals[i, k] - reconstructions[j, k]) ** 2``, computed at
    once for all pairs (rows are originals, columns reconstructions).

    Args:
        reconstructions: ``[B, ...]`` reconstructions (raw values).
        originals: ``[B, ...]`` originals, same shape.

    Raises:
        ConfigError: the shapes differ.

    >>> pairwise_mse(torch.tensor([[1.0], [3.0]]), torch.tensor([[1.0], [2.0]]))
    tensor([[0., 4.],
            [1., 1.]], dtype=torch.float64)
    """
    check_same_shape("reconstructions", reconstructions, "originals", originals, min_dim=2)
    return _pairwise_mse(reconstructions, originals)


def match_reconstructions(reconstructions: Tensor, originals: Tensor, *, cost: MatchingCost = "mse") -> Tensor:
    """Return the permutation ``[B]`` (int64) that pairs ``reconstructions[permutation[i]]`` with ``originals[i]``.

    Solves the linear assignment problem ``min_pi sum_i cost[i, pi(i)]`` over all
    permutations ``pi`` with ``cost = pairwise_mse(reconstructions, originals)``, by
    ``scipy.optimize.linear_sum_assignment`` (Crouse's shortest augmenting path
    variant of the Hungarian method, exact). ``reconstructions[permutation]`` is then
    in the originals' order; permute anything attached to the reconstructions (their
    labels) the same way.

    Args:
        reconstructions: ``[B, ...]`` reconstructions (raw values).
        originals: ``[B, ...]`` originals, same shape.
        cost: the per-pair cost to minimise; ``"mse"`` is the only one so far.

    Returns:
        int64 tensor ``[B]`` on the reconstructions' device.

    Raises:
        ConfigError: the shapes differ, an input holds NaN or Inf, or ``cost`` is unknown.

    >>> originals = torch.tensor([[0.0], [1.0], [2.0]])
    >>> match_reconstructions(torch.tensor([[2.1], [0.1], [0.9]]), originals)
    tensor([1, 2, 0])
    """
    require_choice("cost", cost, _COSTS)
    check_same_shape("reconstructions", reconstructions, "originals", originals, min_dim=2)
    check_finite("reconstructions", reconstructions)
    check_finite("originals", originals)
    return _match(reconstructions, originals)


def _pairwise_mse(reconstructions: Tensor, originals: Tensor) -> Tensor:
    batch = originals.shape[0]
    flat_originals = originals.detach().to(torch.float64).reshape(batch, -1)
    flat_reconstructions = reconstructions.detach().to(torch.float64).reshape(batch, -1).to(flat_originals.device)
    # The matrix-multiply shortcut |a|^2 - 2ab + |b|^2 cancels badly for near-equal
    # pairs; direct differences keep an exact match at exactly zero cost.
    distances = torch.cdist(flat_originals, flat_reconstructions, compute_mode="donot_use_mm_for_euclid_dist")
    return distances.square() / flat_originals.shape[1]


def _match(reconstructions: Tensor, originals: Tensor) -> Tensor:
    cost_matrix = _pairwise_mse(reconstructions, originals).cpu().numpy()
    _, columns = linear_sum_assignment(cost_matrix)
    return torch.from_numpy(np.asarray(columns, dtype=np.int64)).to(reconstructions.device)
