"""How close a recovered update is to the true one: cosine similarity and relative error."""

from __future__ import annotations

from torch import Tensor

from leakage.metrics._validation import check_finite, check_same_shape

__all__ = ["relative_error", "update_cosine"]


def update_cosine(estimate: Tensor, truth: Tensor) -> float:
    """Return the cosine similarity of two flat updates, computed in float64.

    ``cos = <estimate, truth> / (||estimate|| ||truth||)``: 1 when the direction is
    recovered (what gradient inversion and property inference need), 0 when unrelated.
    A zero vector has no direction, so its cosine with anything is 0.

    Raises:
        ConfigError: the shapes differ or a value is not finite.

    >>> import torch
    >>> update_cosine(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]))
    1.0
    """
    first, second = _checked_pair(estimate, truth)
    norms = float(first.norm() * second.norm())
    return float(first @ second) / norms if norms > 0 else 0.0


def relative_error(estimate: Tensor, truth: Tensor) -> float:
    """Return ``||estimate - truth|| / ||truth||`` in float64 (``inf`` for a zero truth unless equal).

    Raises:
        ConfigError: the shapes differ or a value is not finite.

    >>> import torch
    >>> relative_error(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]))
    1.0
    """
    first, second = _checked_pair(estimate, truth)
    difference = float((first - second).norm())
    scale = float(second.norm())
    if scale == 0.0:
        return 0.0 if difference == 0.0 else float("inf")
    return difference / scale


def _checked_pair(estimate: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """Both vectors flattened to float64, after the shape and finiteness checks."""
    check_same_shape("estimate", estimate, "truth", truth, min_dim=1)
    check_finite("estimate", estimate)
    check_finite("truth", truth)
    return estimate.reshape(-1).double(), truth.reshape(-1).double()
