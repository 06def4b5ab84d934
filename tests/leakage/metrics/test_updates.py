import pytest
import torch

from leakage.errors import ConfigError
from leakage.metrics import relative_error, update_cosine


def test_cosine_and_relative_error_against_known_values() -> None:
    truth = torch.tensor([3.0, 4.0])

    assert update_cosine(truth * 2, truth) == pytest.approx(1.0)
    assert update_cosine(torch.tensor([-4.0, 3.0]), truth) == pytest.approx(0.0)
    assert update_cosine(torch.zeros(2), truth) == 0.0
    assert relative_error(truth + torch.tensor([0.0, 0.5]), truth) == pytest.approx(0.1)
    assert relative_error(torch.zeros(2), torch.zeros(2)) == 0.0
    assert relative_error(torch.ones(2), torch.zeros(2)) == float("inf")


def test_update_metrics_reject_mismatched_or_non_finite_inputs() -> None:
    with pytest.raises(ConfigError, match="same shape"):
        update_cosine(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ConfigError, match="NaN"):
        relative_error(torch.tensor([float("nan")]), torch.zeros(1))
