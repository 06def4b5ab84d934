"""Shared fixtures: a tiny dataset, a tiny model and a seeded generator."""

from __future__ import annotations

import pytest
import torch

from leakage.data import Dataset, load_dataset
from leakage.models import create_model


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def tiny_digits(digits: Dataset) -> Dataset:
    """The first 120 digits: enough for a dozen clients, fast to train on."""
    return digits.subset(torch.arange(120))


@pytest.fixture
def tiny_model(generator: torch.Generator) -> torch.nn.Module:
    return create_model("mlp", input_shape=(1, 8, 8), num_classes=10, generator=generator, hidden=(16,))
