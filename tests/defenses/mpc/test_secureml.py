"""The ``mpc`` scheme's ``secureml`` backend: two-class logreg trained on secret shares inside the simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

import defenses  # noqa: F401  # registers every scheme and backend
from defenses.mpc import MPCTraining
from defenses.mpc.protocol import piecewise_sigmoid
from leakage.data import load_dataset
from leakage.errors import ConfigError
from leakage.simulation import SimulationSettings, Simulator
from leakage.transcript import Transcript
from leakage.views import EAVESDROPPER, PUBLIC, SERVER


def _run(scheme: str = "mpc", *, seed: int = 3, rounds: int = 3, **overrides: object) -> Transcript:
    options: dict[str, object] = {
        "dataset": "breast_cancer", "model": "logreg", "n_clients": 2, "rounds": rounds, "algorithm": "fedsgd",
        "batch_size": 8, "lr": 0.1, "server_lr": 0.5, "scheme": scheme, "seed": seed,
    }
    options.update(overrides)
    return Simulator(SimulationSettings(**options)).run()  # type: ignore[arg-type]


def _difference(flat: torch.Tensor) -> NDArray[np.float64]:
    """``[w_1 - w_0, b_1 - b_0]`` of a flat two-class logreg."""
    values = flat.to(torch.float64).numpy()
    features = len(values) // 2 - 1
    weights = values[: 2 * features].reshape(2, features)
    return np.append(weights[1] - weights[0], values[-1] - values[-2])


def test_auto_picks_secureml_for_two_class_logreg_and_ideal_otherwise() -> None:
    assert _run(rounds=1).rounds[0].public["mpc_backend"] == "secureml"
    mlp = _run(rounds=1, model="mlp", model_options={"hidden": [4]})
    assert mlp.rounds[0].public["mpc_backend"] == "ideal"
    ten_classes = _run(rounds=1, dataset="digits")
    assert ten_classes.rounds[0].public["mpc_backend"] == "ideal"


def test_fedsgd_on_shares_matches_its_plaintext_twin() -> None:
    """Oracle: the binary logistic step with SecureML's sigmoid, twice the lr, FedAvg weights, server lr."""
    transcript = _run(rounds=4)
    dataset = load_dataset("breast_cancer")
    inputs, targets = dataset.inputs.to(torch.float64).numpy(), dataset.targets.to(torch.float64).numpy()
    v = _difference(transcript.initial_params)
    for truth in transcript.truth.rounds:
        orders = {c: truth.sample_order[c].numpy() for c in truth.client_ids}
        total = sum(len(o) for o in orders.values())
        delta = np.zeros_like(v)
        for order in orders.values():
            x = np.hstack([inputs[order], np.ones((len(order), 1))])
            gradient = x.T @ (piecewise_sigmoid(x @ v) - targets[order])
            delta += len(order) / total * (-2 * 0.1 / len(order)) * gradient
        v = v + 0.5 * delta

    released = transcript.rounds[-1].params_after
    assert np.abs(_difference(released) - v).max() < 1e-3
    # The softmax pair's sum never changes under gradient steps: only the difference is trained.
    start, end = transcript.initial_params.to(torch.float64), released.to(torch.float64)
    features = len(start) // 2 - 1
    assert torch.allclose(
        start[:features] + start[features : 2 * features], end[:features] + end[features : 2 * features], atol=1e-5
    )


def test_every_observer_sees_only_the_final_model() -> None:
    transcript = _run(rounds=3)
    for record in transcript.rounds:
        final = record.round_index == len(transcript.rounds) - 1
        for observer, view in record.views.items():
            assert view.params_before is None
            assert (view.params_after is not None) == final
            if final:
                assert view.params_after is not None and torch.equal(view.params_after, record.params_after)
            hidden = observer in (EAVESDROPPER, PUBLIC)
            allowed = {"model_share"} if observer == SERVER else set() if hidden else {"data_indices"}
            assert set(view.own) <= allowed and not view.received
        assert record.metrics["mpc_bytes"] > 0 and record.metrics["mpc_rounds"] >= 11


def test_the_servers_model_share_is_uniform_on_the_ring() -> None:
    shares = torch.cat([_run(rounds=1, seed=seed).rounds[0].views[SERVER].own["model_share"] for seed in range(40)])
    top = ((shares.numpy().view(np.uint64) >> np.uint64(60)).astype(np.int64))
    counts = np.bincount(top, minlength=16)
    expected = len(top) / 16
    assert float(((counts - expected) ** 2 / expected).sum()) < 37.7  # chi-square, 15 dof, p = 0.001


def test_same_seed_repeats_and_three_parties_agree() -> None:
    first, second = _run(seed=5), _run(seed=5)
    assert torch.equal(first.rounds[-1].params_after, second.rounds[-1].params_after)
    three = _run(seed=5, scheme_options={"parties": 3})
    fresh = _run(seed=5, scheme_options={"randomness": "fresh"})
    for other in (three, fresh):
        assert (first.rounds[-1].params_after - other.rounds[-1].params_after).abs().max() < 1e-3
    assert three.rounds[0].metrics["mpc_rounds"] > first.rounds[0].metrics["mpc_rounds"]


def test_fedavg_with_dropouts_trains_on_the_arriving_clients() -> None:
    transcript = _run(algorithm="fedavg", batch_size=32, n_clients=4, dropout=0.3, rounds=3)
    plain = _run("plain", algorithm="fedavg", batch_size=32, n_clients=4, dropout=0.3, rounds=3)
    assert [r.survivors for r in transcript.rounds] == [r.survivors for r in plain.rounds]
    assert transcript.rounds[-1].params_after.isfinite().all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "garbled"}, "mpc backend must be one of auto, ideal, secureml"),
        ({"parties": 4}, "mpc parties must be one of 2, 3"),
        ({"sigmoid": "tanh"}, "mpc sigmoid must be one of piecewise, cubic"),
        ({"randomness": "os"}, "mpc randomness must be one of seeded, fresh"),
    ],
)
def test_bad_options_name_the_field_and_the_choices(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MPCTraining(**options)  # type: ignore[arg-type]


def test_secureml_refuses_other_models_and_mechanisms_in_front() -> None:
    with pytest.raises(ConfigError, match="trains two-class logreg"):
        _run(rounds=1, model="mlp", scheme_options={"backend": "secureml"})
    with pytest.raises(ConfigError, match="would never apply"):
        _run("compression,mpc", rounds=1)


def test_a_secureml_transcript_saves_and_loads_with_the_party_share(tmp_path: Path) -> None:
    transcript = _run(rounds=2)
    path = tmp_path / "run.pt"
    transcript.save(path)
    loaded = Transcript.load(path)
    share = transcript.rounds[0].views[SERVER].own["model_share"]
    assert torch.equal(loaded.rounds[0].views[SERVER].own["model_share"], share)
    assert share.dtype == torch.int64
    assert torch.equal(loaded.rounds[-1].params_after, transcript.rounds[-1].params_after)
