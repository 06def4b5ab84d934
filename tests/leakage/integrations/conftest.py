"""One real Flower SecAgg+ simulation shared by the bridge's tests and the audit's (each costs ~12 s of Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from leakage.data import Dataset

MODEL_OPTIONS = {"hidden": [32], "activation": "sigmoid"}


@pytest.fixture(scope="session")
def secagg_two_clients(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> Path:
    """Flower's SecAgg+ workflow, 2 clients holding one digit each, FedSGD with batch 1, lr 0.1, 2 rounds.

    Both clients are recorded: client 0 is the attacker, client 1 a canary.
    """
    pytest.importorskip("flwr")
    from leakage.integrations.flower import run_flower_simulation
    from leakage.models import create_model
    from leakage.recording import AggregationRule, RecordedTask

    model = create_model("mlp", input_shape=digits.input_shape, num_classes=digits.num_classes,
                         generator=torch.Generator().manual_seed(0), **MODEL_OPTIONS)
    return run_flower_simulation(
        tmp_path_factory.mktemp("flower") / "secagg-two", dataset=digits, model=model, partition=[[0], [1]],
        rounds=2, rule=AggregationRule(algorithm="fedsgd", lr=0.1, batch_size=1),
        task=RecordedTask("digits", "mlp", model_options=MODEL_OPTIONS), secure_aggregation=True,
        recorded_clients=(0,), canaries=(1,), clipping_range=8.0, quantization_range=2**22,
    )
