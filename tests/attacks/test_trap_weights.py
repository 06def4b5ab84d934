"""The trap-weights attack: lone activations give samples exactly, through a real aggregated round."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks import ATTACKS, Knowledge, create_attack
from attacks.imprint import match_samples
from attacks.trap_weights import (
    TrapWeightsAttack,
    install_trap_weights,
    recover_from_trap_weights,
    trap_weights,
)
from leakage import create_model, simulate
from leakage.data import Dataset
from leakage.errors import ConfigError


def _trapped_mlp(digits: Dataset, hidden: int, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    model = create_model("mlp", input_shape=digits.input_shape, num_classes=10, generator=generator, hidden=(hidden,))
    return install_trap_weights(model, digits.input_shape, mean=digits.mean, std=digits.std, generator=generator)


def test_a_unit_activated_by_one_sample_gives_it_to_float_precision(digits: Dataset) -> None:
    model = _trapped_mlp(digits, 500, seed=0).double()
    inputs, labels = digits.inputs[:20].double(), digits.targets[:20]
    first = model[1]
    assert isinstance(first, nn.Linear)

    loss = nn.functional.cross_entropy(model(inputs), labels)
    weight, bias = torch.autograd.grad(loss, [first.weight, first.bias])
    candidates, rows = recover_from_trap_weights(weight, bias)

    active = first(inputs.reshape(20, -1)) > 0  # [samples, units]
    lone_rows = torch.nonzero(active.sum(dim=0) == 1).reshape(-1)
    assert lone_rows.numel() > 0
    for row in lone_rows.tolist():
        sample = int(torch.nonzero(active[:, row]).reshape(-1)[0])
        (position,) = torch.nonzero(rows == row).reshape(-1).tolist()
        assert torch.allclose(candidates[position], inputs[sample].reshape(-1), rtol=0, atol=1e-9)


def test_trap_rows_are_half_negative_and_shrinking_the_positive_half_fires_less(digits: Dataset) -> None:
    raw = digits.denormalize(digits.inputs[:500]).reshape(500, -1).double()
    rates = {}
    for scale in (1.0, 0.95, 0.5):
        rows = trap_weights(200, 64, scale=scale, generator=torch.Generator().manual_seed(0))
        assert bool(((rows < 0).sum(dim=1) == 32).all())
        rates[scale] = float((raw @ rows.T > 0).double().mean())

    assert rates[0.5] < rates[0.95] < rates[1.0]


def test_trap_weights_recover_samples_from_a_secure_aggregate(digits: Dataset) -> None:
    model = _trapped_mlp(digits, 1000, seed=0)
    transcript = simulate(dataset=digits, model=model, n_clients=4, rounds=1, algorithm="fedsgd", batch_size=8,
                          scheme="secagg", seed=0, partition_options={"samples_per_client": 8})

    found = TrapWeightsAttack().run(transcript.views_of("server"), Knowledge.from_dataset(digits, model, lr=0.1))
    clients = transcript.truth.rounds[0].client_ids
    indices = torch.cat([transcript.truth.partition[client] for client in clients])
    match = match_samples(found.raw_inputs, digits.denormalize(digits.inputs[indices]), data_range=1.0)

    assert match.fraction_recovered(30.0) >= 0.1


def test_it_is_registered_as_a_server_attack_on_records() -> None:
    attack = create_attack("trap_weights")
    assert isinstance(attack, TrapWeightsAttack) and ATTACKS.get("trap_weights").produces == "records"
    assert TrapWeightsAttack.runs_as("server") and not TrapWeightsAttack.runs_as("client")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: trap_weights(3, 4, scale=1.5, generator=torch.Generator()), r"^scale must be .*got 1\.5$"),
        (lambda: trap_weights(0, 4, generator=torch.Generator()), r"^out_features must be an integer >= 1, got 0$"),
        (lambda: install_trap_weights(nn.Sequential(nn.Linear(4, 2)), (1, 2, 2), gain=-1.0,
                                      generator=torch.Generator()), r"^gain must be a finite number > 0"),
        (lambda: install_trap_weights(nn.Sequential(nn.Linear(4, 2)), (1, 3, 3), generator=torch.Generator()),
         r"^input_shape \(1, 3, 3\) has 9 features"),
        (lambda: TrapWeightsAttack(min_relative_bias=-0.1), r"^min_relative_bias must be"),
        (lambda: recover_from_trap_weights(torch.zeros(3, 2), torch.zeros(4)), r"^weight_grad must be \[H, D\]"),
    ],
)
def test_bad_arguments_are_refused_with_a_one_line_message(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        call()  # type: ignore[operator]
    assert "\n" not in str(error.value)
