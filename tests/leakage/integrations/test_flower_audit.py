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
def two_clients(secagg_two_clients: Path) -> Report:
    """The shared run (conftest): the same setting as ``_secagg_run`` with two clients."""
    return score_recording(secagg_two_clients, SPEC)


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


PLAIN = {"n_clients": 3, "rounds": 2, "algorithm": "fedavg", "batch_size": None, "local_epochs": 1, "lr": 0.1}
OBSERVERS = ("server", "participant", "coalition", "public")


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """Our simulator's plain FedAvg, and Flower's on the same partition and initial model (deterministic)."""
    from leakage import simulate

    simulated = simulate(dataset="digits", model="mlp", model_options=MODEL_OPTIONS, scheme="plain", seed=0, **PLAIN)
    folder = run_flower_simulation(
        tmp_path_factory.mktemp("flower") / "plain", dataset=load_dataset("digits"),
        model=simulated.build_model(simulated.initial_params, simulated.initial_buffers),
        partition=list(simulated.truth.partition), rounds=2,
        rule=AggregationRule(algorithm="fedavg", lr=0.1, batch_size=None),
        task=RecordedTask("digits", "mlp", model_options=MODEL_OPTIONS), recorded_clients=(0, 1, 2), canaries=(0,),
        announce=True,  # tell clients who took part and their weights, as the simulator's plain does
    )
    return simulated, folder


def test_flower_plain_gives_the_simulators_rows(plain_run: tuple[object, Path]) -> None:
    from leakage.quantify.scoring import score_transcript

    simulated, folder = plain_run
    spec = DeploymentSpec(observers=OBSERVERS, attacks=(AttackSpec("round_difference"), AttackSpec("disaggregation")))
    recorded = [r.row for r in score_recording(folder, spec).results]
    expected = score_transcript(simulated, load_dataset("digits"), observers=OBSERVERS,  # type: ignore[arg-type]
                                attacks=[(a.name, a.options) for a in spec.attacks], target=0, seed=0)
    assert [(r.observer, r.observer_name, r.attack, r.status) for r in recorded] == [
        (r.observer, r.observer_name, r.attack, r.status) for r in expected
    ]
    for got, want in zip(recorded, expected, strict=True):
        assert got.value == pytest.approx(want.value, abs=1e-4), (got.observer, got.attack)
        assert got.leakage == pytest.approx(want.leakage, abs=1e-3), (got.observer, got.attack)
    assert {(r.observer, r.status) for r in recorded if r.attack == "round_difference"} == {
        ("participant", "ok"), ("coalition", "ok")
    }


def test_a_flower_recording_round_trips(plain_run: tuple[object, Path], tmp_path: Path) -> None:
    from leakage.recording import read_recording, record_transcript

    _, folder = plain_run
    first = read_recording(folder).transcript
    again = read_recording(record_transcript(first, tmp_path / "again", canaries=(0,))).transcript
    assert [r.survivors for r in again.rounds] == [r.survivors for r in first.rounds]
    for a, b in zip(first.rounds, again.rounds, strict=True):
        assert torch.equal(a.params_after, b.params_after)
        assert sorted(a.views) == sorted(b.views)
        for name, view in a.views.items():
            other = b.views[name]
            assert sorted(view.received) == sorted(other.received) and view.participants == other.participants
            assert view.public == other.public
            for key, value in view.own.items():
                torch.testing.assert_close(other.own[key], value, atol=1e-6, rtol=0)
    torch.testing.assert_close(again.truth.rounds[1].update_of(0), first.truth.rounds[1].update_of(0), atol=1e-6, rtol=0)


def test_without_the_announcement_a_flower_client_cannot_subtract(plain_run: tuple[object, Path], tmp_path: Path) -> None:
    """Flower's plain FedAvg tells a client nothing about the others: the recording says so, not a guess."""
    import shutil

    _, folder = plain_run
    quiet = Path(shutil.copytree(folder, tmp_path / "quiet"))
    for told in quiet.glob("clients/*/rounds/*/released.json"):
        told.unlink()
    spec = DeploymentSpec(observers=("participant",), attacks=(AttackSpec("round_difference"),))
    row = score_recording(quiet, spec).results[0].row
    assert row.status == "not_applicable" and "was not told who took part" in (row.note or "")


BN_NET = '''
from torch import nn


def build(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, num_classes))
'''


@pytest.mark.slow
def test_a_model_of_ones_own_with_batch_norm_buffers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A team's own model (an import path) with running statistics: Flower averages the buffers, the recording keeps them."""
    from leakage.models import create_model
    from leakage.recording import read_recording

    (tmp_path / "bn_net.py").write_text(BN_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = create_model("bn_net:build", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator())
    folder = run_flower_simulation(
        tmp_path / "run", dataset=load_dataset("digits"), model=model,
        partition=[torch.arange(0, 30), torch.arange(30, 50)], rounds=1,
        rule=AggregationRule(algorithm="fedavg", lr=0.1, batch_size=10), task=RecordedTask("digits", "bn_net:build"),
        recorded_clients=(0, 1), canaries=(0,),
    )
    transcript = read_recording(folder).transcript
    record = transcript.rounds[0]
    server = record.views["server"]
    uploaded = [server.received[f"buffers:client:{c}"] for c in (0, 1)]
    assert len(transcript.buffer_layout.names) == 3  # running mean, running variance, batch counter
    mean = (30 * uploaded[0] + 20 * uploaded[1]) / 50
    torch.testing.assert_close(record.buffers_after[:32], mean[:32], atol=1e-5, rtol=1e-5)  # running statistics
    # Flower 1.42's in-place FedAvg casts each scaling factor (0.6, 0.4) to an integer array's dtype, so the
    # batch counter (3 and 2 batches) aggregates to 0; the recording keeps what Flower really released.
    assert uploaded[0][-1] == 3 and uploaded[1][-1] == 2 and record.buffers_after[-1] == 0
    torch.testing.assert_close(record.views["client:0"].own["buffers"], uploaded[0])
    rebuilt = transcript.build_model()
    assert torch.equal(rebuilt[2].running_mean, record.buffers_after[:16])
