"""Model inconsistency: the secure aggregate is the target's update, unless keys are bound to the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks.model_inconsistency import dead_parameters
from defenses.secure_aggregation import ClientChecks, RingEncoding, architecture_digest
from leakage import load_dataset
from leakage.errors import ConfigError
from leakage.models import create_model
from leakage.quantify import model_inconsistency_round

DIGITS = load_dataset("digits")


def _round(n: int, **options: object):  # type: ignore[no-untyped-def]
    net = create_model("mlp", input_shape=DIGITS.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0))
    params = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    clients = [(DIGITS.inputs[8 * i:8 * i + 8], DIGITS.targets[8 * i:8 * i + 8]) for i in range(n)]
    return net, model_inconsistency_round(net, params, clients, target=3, lr=0.1, **options)  # type: ignore[arg-type]


def test_among_a_hundred_clients_the_secure_aggregate_is_the_targets_update() -> None:
    net, result = _round(100)
    assert result.aborted is None and result.estimate is not None
    # every coordinate but the output layer's 10 biases is silenced in the others' updates
    assert int(result.silenced.sum()) == result.silenced.numel() - 10
    assert result.exact  # bit for bit the target's encoded update on those coordinates
    step = RingEncoding.fitting(ring_bits=32, clip_range=1.0, max_total_weight=100).step
    torch.testing.assert_close(result.estimate[result.silenced], result.true_update[result.silenced],
                               atol=step, rtol=0)  # within one fixed-point step of the true update
    assert result.relative_error_silenced is not None and result.relative_error_silenced < 1e-3


def test_binding_keys_to_the_model_makes_every_client_refuse_before_any_masked_input() -> None:
    _, result = _round(100, checks=ClientChecks(bind_model=True))
    assert result.estimate is None and len(result.refusals) == 100
    assert result.aborted is not None and result.aborted.startswith("masked input collection: only 0 clients")
    assert all("holds another model" in why for why in result.refusals.values())


def test_model_vetting_passes_the_dead_model_it_has_the_real_architecture() -> None:
    net = create_model("mlp", input_shape=DIGITS.input_shape, num_classes=10, generator=torch.Generator())
    _, result = _round(10, checks=ClientChecks(announced_architecture=architecture_digest(net)))
    assert result.vetted and result.exact


def test_a_model_the_dead_layer_cannot_silence_is_refused() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    with pytest.raises(ConfigError, match="first layer is a Linear with a bias followed by a ReLU-like"):
        dead_parameters(net, torch.zeros(23))


def test_summing_the_encoded_updates_directly_gives_what_the_protocol_gives() -> None:
    _, run = _round(20)
    _, summed = _round(20, protocol=False)
    assert run.estimate is not None and summed.estimate is not None
    torch.testing.assert_close(run.estimate, summed.estimate, rtol=0, atol=0)
    assert summed.relative_error is not None and summed.relative_error < 0.5
