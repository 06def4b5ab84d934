"""Boundary checks the public metric functions share; each message names the field."""

from __future__ import annotations

import torch
from torch import Tensor

from leakage.checks import require_positive_float
from leakage.errors import ConfigError


def check_same_shape(first_name: str, first: Tensor, second_name: str, second: Tensor, *, min_dim: int) -> None:
    """Raise ConfigError unless both tensors share one shape with at least ``min_dim`` dims and a batch."""
    for name, value in ((first_name, first), (second_name, second)):
        if not isinstance(value, Tensor):
            raise ConfigError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() < min_dim:
            raise ConfigError(
                f"{name} must have at least {min_dim} dimensions [B, ...], got shape {tuple(value.shape)}"
            )
        if value.shape[0] < 1:
            raise ConfigError(f"{name} must hold at least one sample, got shape {tuple(value.shape)}")
    if first.shape != second.shape:
        raise ConfigError(
            f"{first_name} and {second_name} must have the same shape, "
            f"got {tuple(first.shape)} and {tuple(second.shape)}"
        )


def check_finite(name: str, value: Tensor) -> None:
    """Raise ConfigError if ``value`` holds NaN or Inf (a diverged attack must not be scored as a number)."""
    if not bool(torch.isfinite(value).all()):
        raise ConfigError(f"{name} contains NaN or Inf values; a diverged reconstruction cannot be scored")


def check_data_range(data_range: object) -> float:
    """Return ``data_range`` as a float if it is finite and > 0, else raise ConfigError."""
    return require_positive_float("data_range (high - low of the raw values)", data_range)


def check_labels(name: str, labels: Tensor) -> None:
    """Raise ConfigError unless ``labels`` is a non-empty 1-D integer tensor."""
    if not isinstance(labels, Tensor):
        raise ConfigError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1 or labels.numel() == 0:
        raise ConfigError(f"{name} must be a non-empty 1-D tensor [B], got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ConfigError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
