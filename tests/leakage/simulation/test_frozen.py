"""A user's frozen parameters (``requires_grad=False``: a backbone kept fixed while fine-tuning) never move."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from leakage import load_dataset, simulate


def _net(with_batch_norm: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(64, 16)]
    if with_batch_norm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.Tanh(), nn.Linear(16, 10)]
    net = nn.Sequential(*layers)
    for parameter in net[1].parameters():  # the "backbone"
        parameter.requires_grad_(False)
    return net


@pytest.mark.parametrize(
    "options",
    [
        {"algorithm": "fedsgd", "batch_size": None},
        {"algorithm": "fedavg", "batch_size": 2},  # several steps: the trajectory must keep it fixed too
        {"algorithm": "fedavg", "batch_size": 2, "vectorise": False},
        {"algorithm": "fedavg", "batch_size": 3, "partition": "quantity", "partition_options": {"alpha": 1.0}},
    ],
)
def test_frozen_parameters_stay_and_the_rest_trains_as_a_plain_loop_would(options: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"partition_options": {"samples_per_client": 6}, **options}
    transcript = simulate(model=_net(), n_clients=3, rounds=1, seed=1, **settings)
    updates = transcript.truth.rounds[0].updates
    frozen = transcript.layout.unflatten(updates)
    assert bool((frozen["1.weight"] == 0).all()) and bool((frozen["1.bias"] == 0).all())
    assert bool((frozen["3.weight"] != 0).any())
    # oracle: a plain loop with torch.optim.SGD over the same batches, the backbone frozen
    dataset = load_dataset("digits")
    truth = transcript.truth.rounds[0]
    batch = 6 if options["algorithm"] == "fedsgd" else options["batch_size"]
    for row, client in enumerate(truth.client_ids):
        net = _net()
        start = [p.detach().clone() for p in net.parameters()]
        optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
        order = truth.sample_order[client]
        for begin in range(0, len(order), batch):
            chosen = order[begin : begin + batch]
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(dataset.inputs[chosen]), dataset.targets[chosen]).backward()
            optimizer.step()
        expected = torch.cat([(p.detach() - s).reshape(-1) for p, s in zip(net.parameters(), start, strict=True)])
        torch.testing.assert_close(updates[row], expected, rtol=1e-4, atol=1e-6)


def test_frozen_parameters_stay_in_a_model_with_buffers() -> None:
    transcript = simulate(model=_net(with_batch_norm=True), n_clients=3, rounds=2, algorithm="fedavg", batch_size=3,
                          partition_options={"samples_per_client": 6})
    first = transcript.layout.unflatten(transcript.final_params - transcript.initial_params)
    assert bool((first["1.weight"] == 0).all())
    assert bool((first["2.weight"] != 0).any())  # batch norm's own parameters train
