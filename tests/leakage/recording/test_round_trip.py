"""A simulation written as a recording and read back gives the same views, truth and scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage import Transcript, load_dataset, simulate
from leakage.errors import ConfigError
from leakage.quantify.scoring import score_transcript
from leakage.recording import (
    AggregationRule,
    ClientRecorder,
    RecordedTask,
    ServerRecorder,
    read_recording,
    record_transcript,
    state_dict_to_flat,
)
from leakage.views import SERVER

ATTACKS = [("round_difference", {}), ("idlg", {"max_evals": 200, "restarts": 1})]
OBSERVERS = ["server", "participant", "coalition", "public"]


@pytest.fixture(scope="module", params=["plain", "secagg+"])
def simulated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Transcript, Path]:
    transcript = simulate(
        n_clients=3, rounds=2, algorithm="fedsgd", batch_size=1, scheme=request.param,
        model="mlp", model_options={"hidden": [16], "activation": "sigmoid"}, seed=3,
    )
    folder = record_transcript(transcript, tmp_path_factory.mktemp("recording") / "run", canaries=(0,))
    return transcript, folder


def test_views_and_truth_round_trip(simulated: tuple[Transcript, Path]) -> None:
    transcript, folder = simulated
    recording = read_recording(folder)
    back = recording.transcript
    assert recording.canaries == (0,) and recording.recorded == (0, 1, 2)
    assert len(back.rounds) == len(transcript.rounds)
    for original, read in zip(transcript.rounds, back.rounds, strict=True):
        assert read.sampled == original.sampled and read.survivors == original.survivors
        torch.testing.assert_close(read.params_before, original.params_before)
        torch.testing.assert_close(read.params_after, original.params_after)
        server, server_back = original.views[SERVER], read.views[SERVER]
        assert server_back.participants == server.participants
        for key, message in server_back.received.items():  # what arrived: uploads, or the aggregate alone
            torch.testing.assert_close(message, server.received[key], atol=1e-6, rtol=1e-5)
        assert ("aggregate" in server_back.received) == (original.scheme != "plain")
        for client in (0, 1, 2):
            name = f"client:{client}"
            view, view_back = original.views[name], read.views[name]
            torch.testing.assert_close(view_back.own["update"], view.own["update"], atol=1e-6, rtol=1e-5)
            assert torch.equal(view_back.own["data_indices"], view.own["data_indices"])
            assert view_back.participants == view.participants
        truth, truth_back = transcript.truth.rounds[read.round_index], back.truth.rounds[read.round_index]
        assert truth_back.recorded_ids == (0,)
        torch.testing.assert_close(truth_back.update_of(0), truth.update_of(0), atol=1e-6, rtol=1e-5)
        assert torch.equal(truth_back.sample_order[0], truth.sample_order[0])
    assert back.views_of("public")[-1].params_after is not None
    assert Transcript.from_recording(folder).settings["source"] == "recording"


def test_scores_match_the_simulation(simulated: tuple[Transcript, Path]) -> None:
    transcript, folder = simulated
    dataset = load_dataset("digits")
    rows = score_transcript(transcript, dataset, observers=OBSERVERS, attacks=ATTACKS, target=0, seed=0)
    back = score_transcript(Transcript.from_recording(folder), dataset, observers=OBSERVERS, attacks=ATTACKS,
                            target=0, seed=0)
    assert [(r.observer, r.observer_name, r.attack, r.status) for r in back] == [
        (r.observer, r.observer_name, r.attack, r.status) for r in rows
    ]
    for row, row_back in zip(rows, back, strict=True):
        assert row_back.value == pytest.approx(row.value, rel=1e-3, abs=1e-3), (row.observer, row.attack)
        assert row_back.leakage == pytest.approx(row.leakage, abs=1e-3), (row.observer, row.attack)
    assert any(r.status == "ok" and r.attack == "idlg" for r in back)


def test_state_dict_to_flat_covers_buffers() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    state = {k: torch.full_like(v, 2) for k, v in model.state_dict().items()}
    flat = state_dict_to_flat(state, model)
    assert flat.params.numel() == 3 * 2 + 2 + 2 + 2
    assert flat.buffers.tolist() == [2.0] * 5  # running mean, running var, num_batches_tracked (as a float)
    with pytest.raises(ConfigError, match=r"'1.running_var' is missing"):
        state_dict_to_flat({k: v for k, v in state.items() if k != "1.running_var"}, model)
    with pytest.raises(ConfigError, match=r"'0.weight' has shape \(3, 2\), the model's is \(2, 3\)"):
        state_dict_to_flat({**state, "0.weight": torch.zeros(3, 2)}, model)


def test_unrecorded_nodes_get_the_next_free_ids(tmp_path: Path) -> None:
    server = ServerRecorder(tmp_path, task=RecordedTask("digits", "logreg"), rule=AggregationRule(), scheme="secagg+")
    before = {key: torch.zeros_like(value) for key, value in _logreg_state().items()}
    after = {key: torch.ones_like(value) for key, value in before.items()}
    server.record_round(0, before=before, after=after, sampled=["900", "17", "5"], participants=["900", "17", "5"],
                        weights={"900": 2, "17": 3, "5": 4}, aggregate=after)
    ClientRecorder(tmp_path, client_id=0, node="17", data_indices=[4, 5, 6], canary=True).record_fit(
        0, received=before, local=after, num_examples=3)
    recording = read_recording(tmp_path)
    assert recording.nodes == {0: "17", 1: "5", 2: "900"}  # the recorded node keeps its id; the rest by name
    view = recording.transcript.rounds[0].views["server"]
    assert view.public["weights"] == {"0": 3.0, "1": 4.0, "2": 2.0} and view.public["total_weight"] == 9.0
    assert recording.transcript.truth.rounds[0].update_of(0).eq(1.0).all()


def _logreg_state() -> dict[str, torch.Tensor]:
    from leakage.models import create_model

    model = create_model("logreg", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator().manual_seed(0))
    return model.state_dict()


def test_manifest_counts_rounds_and_refuses_to_overwrite(tmp_path: Path) -> None:
    ServerRecorder(tmp_path, task=RecordedTask("digits", "logreg"), rule=AggregationRule(), scheme="plain")
    assert json.loads((tmp_path / "recording.json").read_text())["rounds"] == 0
    with pytest.raises(ConfigError, match="already holds a recording"):
        ServerRecorder(tmp_path, task=RecordedTask("digits", "logreg"), rule=AggregationRule(), scheme="plain")


def test_held_out_records_let_membership_run_on_a_recording(tmp_path: Path) -> None:
    dataset = load_dataset("digits")
    transcript = simulate(dataset=dataset, n_clients=3, rounds=2, algorithm="fedavg", batch_size=5, scheme="plain",
                          partition_options={"samples_per_client": 20}, model="logreg", seed=1)
    used = torch.cat(list(transcript.truth.partition))
    held_out = torch.tensor([i for i in range(len(dataset)) if i not in set(used.tolist())][:200])
    folder = record_transcript(transcript, tmp_path / "run", canaries=(0,), held_out=held_out.tolist())
    attacks = [("loss_threshold", {})]
    expected = score_transcript(transcript, dataset, observers=["server", "public"], attacks=attacks, target=0, seed=0,
                                held_out=dataset.subset(held_out))
    from leakage.quantify import AttackSpec, DeploymentSpec, score_recording

    spec = DeploymentSpec(observers=("server", "public"), attacks=(AttackSpec("loss_threshold"),))
    got = [result.row for result in score_recording(folder, spec).results]
    assert [(r.observer, r.status) for r in got] == [(r.observer, r.status) for r in expected]
    assert all(r.status == "ok" for r in got)
    for row, want in zip(got, expected, strict=True):
        assert row.value == pytest.approx(want.value, abs=1e-6)
    spoiled = json.loads((folder / "recording.json").read_text())
    spoiled["held_out"] = [int(transcript.truth.partition[0][0])]
    (folder / "recording.json").write_text(json.dumps(spoiled))
    with pytest.raises(ConfigError, match=r"recording.json: held_out: record \d+ is in client 0's data"):
        read_recording(folder)


@given(widths=st.lists(st.integers(1, 5), min_size=2, max_size=4), batch_norm=st.booleans(), seed=st.integers(0, 99))
@settings(max_examples=25, deadline=None)
def test_state_dict_to_flat_is_the_toolkits_flat_layout(widths: list[int], batch_norm: bool, seed: int) -> None:
    from torch import nn

    from leakage.models import flatten_buffers, flatten_parameters

    layers: list[nn.Module] = []
    for inputs, outputs in zip(widths, widths[1:], strict=False):
        layers += [nn.Linear(inputs, outputs), *([nn.BatchNorm1d(outputs)] if batch_norm else [])]
    model = nn.Sequential(*layers)
    generator = torch.Generator().manual_seed(seed)
    state = {
        key: torch.randn(value.shape, generator=generator) if value.is_floating_point()
        else torch.randint(0, 9, value.shape, generator=generator)
        for key, value in model.state_dict().items()
    }
    flat = state_dict_to_flat(state, model)
    model.load_state_dict(state)
    assert torch.equal(flat.params, flatten_parameters(model))
    assert torch.equal(flat.buffers, flatten_buffers(model))
