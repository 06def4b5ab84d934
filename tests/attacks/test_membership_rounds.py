"""Membership across rounds: each round's model closest to the target, scores averaged or maximised;
LiRA and RMIA calibrated per round by reference models trained from the round's starting model."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from attacks import Knowledge, LossThresholdAttack, create_attack, train_reference_models
from leakage import load_dataset, simulate
from leakage.errors import ConfigError, ThreatModelError

DATA = load_dataset("digits")


def _run(model: nn.Module | str = "mlp") -> tuple[object, Knowledge]:
    transcript = simulate(model=model, n_clients=3, rounds=3, algorithm="fedavg", batch_size=5, lr=0.3,
                          partition_options={"samples_per_client": 20}, seed=2)
    members = transcript.truth.partition[0]
    others = torch.arange(len(DATA))[~torch.isin(torch.arange(len(DATA)), torch.cat(list(transcript.truth.partition)))]
    candidates = DATA.subset(torch.cat([members, others[:100]]))
    knowledge = Knowledge.from_dataset(DATA, transcript.build_model(), candidates=candidates)
    return transcript, knowledge


def test_each_round_the_server_saw_the_targets_upload_counts() -> None:
    transcript, knowledge = _run()
    server = transcript.views_of("server")  # type: ignore[attr-defined]
    latest = LossThresholdAttack().run(server, knowledge, client=0)
    mean = LossThresholdAttack(rounds="mean").run(server, knowledge, client=0)
    best = LossThresholdAttack(rounds="max").run(server, knowledge, client=0)
    assert mean.details == {"rounds": 3.0, "local_models": 3.0, "calibrated": 0.0}
    # the oracle: the mean of the three rounds' scores, each round's local model alone
    per_round = [LossThresholdAttack().run(server[: r + 1], knowledge, client=0).scores for r in range(3)]
    torch.testing.assert_close(mean.scores, torch.stack(per_round).mean(dim=0))
    torch.testing.assert_close(best.scores, torch.stack(per_round).max(dim=0).values)
    torch.testing.assert_close(latest.scores, per_round[-1])


def test_the_public_has_one_round_to_combine() -> None:
    transcript, knowledge = _run()
    public = transcript.views_of("public")  # type: ignore[attr-defined]
    result = LossThresholdAttack(rounds="mean").run(public, knowledge, client=0)
    assert result.details == {"rounds": 1.0, "local_models": 0.0, "calibrated": 0.0}


def test_the_targets_local_model_is_read_with_the_buffers_it_sent() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 10))
    transcript, knowledge = _run(net)
    server = transcript.views_of("server")  # type: ignore[attr-defined]
    assert "buffers:client:0" in server[-1].received
    scores = LossThresholdAttack(rounds="mean").run(server, knowledge, client=0).scores
    assert torch.isfinite(scores).all()


def test_an_unknown_combination_is_refused() -> None:
    with pytest.raises(ConfigError, match="rounds must be one of latest, mean, max"):
        LossThresholdAttack(rounds="median")


# --- reference-model attacks (LiRA, RMIA) across rounds ---------------------------------------

def _federated(seed: int = 0) -> tuple[object, Knowledge, list[int]]:
    """Ten clients of 60 digits, FedAvg; client 0's records against 200 held-out ones, 600 more the attacker's."""
    transcript = simulate(model="mlp", n_clients=10, rounds=5, algorithm="fedavg", batch_size=10, lr=0.3,
                          local_epochs=2, partition_options={"samples_per_client": 60}, seed=seed)
    members = transcript.truth.partition[0]  # type: ignore[attr-defined]
    used = torch.cat(list(transcript.truth.partition))  # type: ignore[attr-defined]
    others = torch.arange(len(DATA))[~torch.isin(torch.arange(len(DATA)), used)]
    others = others[torch.randperm(len(others), generator=torch.Generator().manual_seed(seed))]
    knowledge = Knowledge.from_dataset(
        DATA, transcript.build_model(), candidates=DATA.subset(torch.cat([members, others[:200]])),  # type: ignore[attr-defined]
        auxiliary=DATA.subset(others[200:800]), lr=0.3, batch_size=10, algorithm="fedavg", local_epochs=2,
        num_samples=60,
    )
    return transcript, knowledge, [1] * len(members) + [0] * 200


def test_reference_models_from_a_round_model_take_the_clients_sgd_steps() -> None:
    net = nn.Sequential(nn.Linear(3, 2))
    start = {name: torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) for name, p in net.named_parameters()}
    inputs, targets = torch.randn(4, 3, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 1, 0])
    mask = torch.tensor([[True, True, False, False], [False, True, True, True]])
    trained = train_reference_models(net, mask, inputs, targets, epochs=1, lr=0.5, batch_size=None,
                                     generator=torch.Generator(), start=start)
    for k in range(2):  # the oracle: one full-batch SGD step from the start, model by model
        weight, bias = start["0.weight"].clone().requires_grad_(), start["0.bias"].clone().requires_grad_()
        loss = nn.functional.cross_entropy(inputs[mask[k]] @ weight.T + bias, targets[mask[k]])
        grad_w, grad_b = torch.autograd.grad(loss, (weight, bias))
        torch.testing.assert_close(trained["0.weight"][k], start["0.weight"] - 0.5 * grad_w)
        torch.testing.assert_close(trained["0.bias"][k], start["0.bias"] - 0.5 * grad_b)


@pytest.mark.parametrize("name", ["lira", "rmia"])
def test_the_server_calibrates_each_round_from_the_model_it_began_from(name: str) -> None:
    transcript, knowledge, truth = _federated()
    server, public = transcript.views_of("server"), transcript.views_of("public")  # type: ignore[attr-defined]
    options = {"reference_models": 8, "epochs": 5}
    mean = create_attack(name, rounds="mean", **options).run(server, knowledge, client=0)
    best = create_attack(name, rounds="max", **options).run(server, knowledge, client=0)
    released = create_attack(name, rounds="mean", **options).run(public, knowledge, client=0)
    assert mean.details["rounds"] == 5.0 and mean.details["local_models"] == 5.0
    assert mean.details["from_round_model"] == 1.0 and released.details["from_round_model"] == 0.0
    assert bool((best.scores >= mean.scores - 1e-12).all())  # the same draws: the max bounds the mean
    server_auc = roc_auc_score(truth, mean.scores.numpy())
    public_auc = roc_auc_score(truth, released.scores.numpy())
    # the server holds client 0's local model of every round; the public one model of all ten clients
    assert server_auc > 0.65 and server_auc > public_auc + 0.1


def test_a_single_round_combines_to_the_latest_models_scores() -> None:
    transcript, knowledge, _ = _federated()
    last = transcript.views_of("server")[-1:]  # type: ignore[attr-defined]
    options = {"reference_models": 4, "epochs": 2}
    latest = create_attack("lira", **options).run(last, knowledge, client=0, generator=torch.Generator().manual_seed(3))
    mean = create_attack("lira", rounds="mean", **options).run(last, knowledge, client=0,
                                                               generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(latest.scores, mean.scores)


def test_starting_from_the_round_model_needs_an_observer_that_saw_it() -> None:
    transcript, knowledge, _ = _federated()
    with pytest.raises(ThreatModelError, match="did not see in round 4"):
        create_attack("lira", start="round", reference_models=4).run(
            transcript.views_of("public"), knowledge, client=0)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="start must be one of auto, scratch, round, got 'middle'"):
        create_attack("rmia", start="middle")


def test_only_the_rounds_that_show_the_targets_local_model_are_combined() -> None:
    transcript = simulate(model="mlp", n_clients=4, clients_per_round=2, rounds=6, algorithm="fedsgd", batch_size=5,
                          lr=0.3, partition_options={"samples_per_client": 20}, seed=4)
    took_part = sum(0 in r.sample_order for r in transcript.truth.rounds)
    assert 0 < took_part < 6
    knowledge = Knowledge.from_dataset(DATA, transcript.build_model(), candidates=DATA.subset(torch.arange(30)))
    server = LossThresholdAttack(rounds="mean").run(transcript.views_of("server"), knowledge, client=0)
    assert server.details == {"rounds": float(took_part), "local_models": float(took_part), "calibrated": 0.0}
    # a participant never holds the target's upload: every round's global model counts
    peer = LossThresholdAttack(rounds="mean").run(transcript.views_of("client:1"), knowledge, client=0)
    assert peer.details["local_models"] == 0.0 and peer.details["rounds"] >= 1


def test_calibrated_scores_are_how_much_the_round_lowered_each_records_loss() -> None:
    transcript, knowledge = _run()
    server = transcript.views_of("server")  # type: ignore[attr-defined]
    calibrated = LossThresholdAttack(calibration="round_start").run(server, knowledge, client=0)
    assert calibrated.details == {"local_model": 1.0, "calibrated": 1.0}
    # the oracle: the raw score under the local model minus the raw score under the round's start,
    # which a participant (holding exactly that global model, round 2's params_before) computes
    start = LossThresholdAttack().run(transcript.views_of("client:1")[:2], knowledge)  # type: ignore[attr-defined]
    local = LossThresholdAttack().run(server, knowledge, client=0)
    torch.testing.assert_close(calibrated.scores, local.scores - start.scores)
    public = transcript.views_of("public")  # type: ignore[attr-defined]
    assert LossThresholdAttack(calibration="auto").run(public, knowledge).details["calibrated"] == 0.0
    with pytest.raises(ThreatModelError, match="did not see in round 2"):
        LossThresholdAttack(calibration="round_start").run(public, knowledge)
