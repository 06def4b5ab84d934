"""The README's bring-your-own-model example, kept runnable: a plain nn.Module and a captured gradient."""

import torch
from torch import nn

from attacks import Knowledge, Observation, create_attack


def test_any_attack_runs_on_a_users_model_and_gradient_in_a_few_lines() -> None:
    # A model and one private sample the user's FL client trained on (no simulation).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Sigmoid(), nn.Linear(32, 4))
    secret, label = torch.rand(1, 1, 4, 4), torch.tensor([2])
    loss = nn.functional.cross_entropy(model(secret), label)
    captured = torch.autograd.grad(loss, list(model.parameters()))

    # The attack: what was observed, what is known, one call.
    observation = Observation.from_gradients(model, captured)
    knowledge = Knowledge(model=model, input_shape=(1, 4, 4), num_classes=4, value_range=(0.0, 1.0))
    results = {name: create_attack(name).run(observation, knowledge) for name in ("analytic", "idlg", "dlg")}

    for name, result in results.items():
        assert result.labels.tolist() == [2], name
        assert torch.allclose(result.raw_inputs, secret, atol=1e-3), name
