"""The attacker's copy of a batch-norm model computes what the client's training step computed."""

from __future__ import annotations

import copy

import torch
from torch import nn

from attacks import Knowledge, Observation, create_attack, use_batch_statistics


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Sigmoid(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)
    ).double()


def test_batch_statistics_give_the_training_mode_output_and_leave_the_buffers_alone() -> None:
    net = _net()
    inputs = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    expected = copy.deepcopy(net).train()(inputs)
    attacker = use_batch_statistics(copy.deepcopy(net)).eval()  # even in evaluation mode
    torch.testing.assert_close(attacker(inputs), expected)
    assert not any(name.endswith("running_mean") for name, _ in attacker.named_buffers())
    torch.testing.assert_close(net[1].running_mean, torch.zeros(3, dtype=torch.float64))


def test_candidates_run_under_vmap_each_with_its_own_statistics() -> None:
    attacker = use_batch_statistics(_net())
    candidates = torch.randn(3, 4, 1, 8, 8, dtype=torch.float64)
    batched = torch.func.vmap(attacker)(candidates)
    one_by_one = torch.stack([attacker(c) for c in candidates])
    torch.testing.assert_close(batched, one_by_one)


def test_idlg_runs_on_a_model_with_running_statistics() -> None:
    net = _net().float().train()
    inputs, targets = torch.randn(2, 1, 8, 8), torch.tensor([1, 3])
    loss = nn.functional.cross_entropy(net(inputs), targets)
    observation = Observation.from_gradients(net, torch.autograd.grad(loss, list(net.parameters())))
    knowledge = Knowledge(model=net, input_shape=(1, 8, 8), num_classes=4, num_samples=2, labels=targets)
    before = {name: value.clone() for name, value in net.named_buffers()}
    result = create_attack("dlg", max_evals=20, restarts=1).run(observation, knowledge)
    assert result.raw_inputs.shape == (2, 1, 8, 8)
    for name, value in net.named_buffers():  # the knowledge's model is never trained on
        torch.testing.assert_close(value, before[name])
