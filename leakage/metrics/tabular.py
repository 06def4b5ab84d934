"""Per-sample error of reconstructed tabular rows on raw (denormalised) features."""

from __future__ import annotations

from torch import Tensor

from leakage.errors import ConfigError
from leakage.metrics._validation import check_same_shape
from leakage.metrics.image import _mse

__all__ = ["feature_mse"]


def feature_mse(estimate: Tensor, reference: Tensor) -> Tensor:
    """Return the mean squared error over the features of each row, ``[B]`` float64.

    ``feature_mse_i = (1 / D) * sum_d (estimate[i, d] - reference[i, d]) ** 2`` on raw
    features, so the unit is the square of the features' own unit. Features on very
    different scales weigh by their scale; compare rows of one dataset only.

    Args:
        estimate: ``[B, D]`` reconstructed rows (raw values).
        reference: ``[B, D]`` original rows, same shape.

    Raises:
        ConfigError: the inputs are not ``[B, D]`` tables of one shape.

    >>> import torch
    >>> feature_mse(torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 4.0], [0.0, 0.0]]))
    tensor([2., 0.], dtype=torch.float64)
    """
    check_same_shape("estimate", estimate, "reference", reference, min_dim=2)
    if estimate.dim() != 2:
        raise ConfigError(f"feature_mse needs tabular rows [B, D], got shape {tuple(estimate.shape)}")
    return _mse(estimate, reference)
