"""The mission's claim on a framework nobody here wrote: Flower's SecAgg+ hides nothing between two clients.

A real Flower simulation (Flower's own engine, its SecAgg+ workflow) is recorded by the
bridge; client 0's recorded view is the attacker's, client 1 is a canary whose data the
auditor controls. The round difference recovers client 1's update, and iDLG its image;
among 20 clients the same attacker learns no more than the released model's direction.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("flwr")

from leakage import load_dataset  # noqa: E402
from leakage.integrations.flower import run_flower_simulation  # noqa: E402
from leakage.models import create_model  # noqa: E402
from leakage.quantify import AttackSpec, DeploymentSpec  # noqa: E402
from leakage.quantify.recording import score_recording  # noqa: E402
from leakage.quantify.report import HIDES_AT_MOST, Report  # noqa: E402
from leakage.recording import AggregationRule, RecordedTask  # noqa: E402

MODEL_OPTIONS = {"hidden": [32], "activation": "sigmoid"}
SPEC = DeploymentSpec(
    observers=("server", "participant", "public"),
    attacks=(AttackSpec("round_difference"), AttackSpec("idlg", {"max_evals": 500, "restarts": 1})),
)


def _secagg_run(folder: Path, clients: int) -> Report:
    """Flower SecAgg+ with ``clients`` clients holding one digit each, FedSGD; client 0 recorded, client 1 a canary."""
    dataset = load_dataset("digits")
    model = create_model("mlp", input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                         generator=torch.Generator().manual_seed(0), **MODEL_OPTIONS)
    run_flower_simulation(
        folder, dataset=dataset, model=model, partition=[[index] for index in range(clients)], rounds=2,
        rule=AggregationRule(algorithm="fedsgd", lr=0.1, batch_size=1),
        task=RecordedTask("digits", "mlp", model_options=MODEL_OPTIONS),
        secure_aggregation=True, recorded_clients=(0,), canaries=(1,), max_weight=1.0,
    )
    return score_recording(folder, SPEC)


def _row(report: Report, observer: str, attack: str) -> object:
    return next(r.row for r in report.results if r.row.observer == observer and r.row.attack == attack)


@pytest.fixture(scope="module")
def two_clients(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return _secagg_run(tmp_path_factory.mktemp("flower") / "two", 2)


def test_two_clients_the_round_difference_is_the_other_update(two_clients: Report) -> None:
    row = _row(two_clients, "participant", "round_difference")
    assert row.observer_name == "client:0" and row.status == "ok"  # type: ignore[attr-defined]
    assert row.metrics["update_cosine"] >= 0.999  # type: ignore[attr-defined]
    image = _row(two_clients, "participant", "idlg")
    assert image.status == "ok" and image.value >= 30.0  # type: ignore[attr-defined]
    server = _row(two_clients, "server", "aggregate")  # the server's aggregate mixes both clients
    assert server.value < 0.999  # type: ignore[attr-defined]
    assert two_clients.recording is not None and two_clients.recording["framework"]["name"] == "flower"


def test_twenty_clients_hide_the_update_from_a_participant(tmp_path: Path) -> None:
    report = _secagg_run(tmp_path / "twenty", 20)
    row = _row(report, "participant", "round_difference")
    assert row.status == "ok" and row.leakage <= HIDES_AT_MOST  # type: ignore[attr-defined]
    assert _row(report, "participant", "idlg").value < 30.0  # type: ignore[attr-defined]
