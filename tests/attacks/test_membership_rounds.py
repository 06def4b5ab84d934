"""``loss_threshold`` across rounds: each round's model closest to the target, scores averaged or maximised."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks import Knowledge, LossThresholdAttack
from leakage import load_dataset, simulate
from leakage.errors import ConfigError

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
    assert mean.details == {"rounds": 3.0, "local_models": 3.0}
    # the oracle: the mean of the three rounds' scores, each round's local model alone
    per_round = [LossThresholdAttack().run(server[: r + 1], knowledge, client=0).scores for r in range(3)]
    torch.testing.assert_close(mean.scores, torch.stack(per_round).mean(dim=0))
    torch.testing.assert_close(best.scores, torch.stack(per_round).max(dim=0).values)
    torch.testing.assert_close(latest.scores, per_round[-1])


def test_the_public_has_one_round_to_combine() -> None:
    transcript, knowledge = _run()
    public = transcript.views_of("public")  # type: ignore[attr-defined]
    result = LossThresholdAttack(rounds="mean").run(public, knowledge, client=0)
    assert result.details == {"rounds": 1.0, "local_models": 0.0}


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
