"""Tests for the per-row MSE of reconstructed tabular features."""

from __future__ import annotations

import pytest
import torch

from leakage.errors import ConfigError
from leakage.metrics import feature_mse, mse


def test_feature_mse_matches_a_loop_over_rows(generator: torch.Generator) -> None:
    estimate = 100.0 * torch.rand(6, 30, generator=generator)
    reference = 100.0 * torch.rand(6, 30, generator=generator)

    values = feature_mse(estimate, reference)

    expected = [
        sum((float(e) - float(r)) ** 2 for e, r in zip(row_e, row_r, strict=True)) / 30
        for row_e, row_r in zip(estimate, reference, strict=True)
    ]
    assert values.shape == (6,) and values.dtype == torch.float64
    assert values.tolist() == pytest.approx(expected, rel=1e-9)
    assert torch.equal(values, mse(estimate, reference))


def test_feature_mse_rejects_images_and_mismatched_rows() -> None:
    with pytest.raises(ConfigError, match=r"feature_mse needs tabular rows \[B, D\], got shape \(2, 1, 8, 8\)"):
        feature_mse(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8))
    with pytest.raises(ConfigError, match="estimate and reference must have the same shape"):
        feature_mse(torch.zeros(2, 30), torch.zeros(3, 30))
