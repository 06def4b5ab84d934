import torch

from attacks import Knowledge, make_upload_function, total_variation
from leakage import create_model, simulate
from leakage.models import ParameterLayout


def _model(digits, seed: int = 0) -> torch.nn.Module:
    return create_model("mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(seed), hidden=(16,))


def test_the_fedsgd_upload_is_the_autograd_gradient(digits) -> None:
    model = _model(digits)
    inputs, targets = digits.inputs[:3], digits.targets[:3]
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])
    upload = make_upload_function(Knowledge.from_dataset(digits, model, num_samples=3))

    predicted = upload(ParameterLayout.of(model).unflatten(torch.cat([p.detach().reshape(-1) for p in model.parameters()])), inputs, targets)

    assert torch.allclose(predicted, expected, atol=1e-6)


def test_unrolled_fedavg_steps_reproduce_the_simulators_update_exactly(digits) -> None:
    transcript = simulate(
        dataset=digits, model="mlp", model_options={"hidden": (16,)}, n_clients=60, clients_per_round=1,
        rounds=1, algorithm="fedavg", local_epochs=1, batch_size=4, lr=0.1, seed=3,
    )
    record, truth = transcript.rounds[0], transcript.truth.rounds[0]
    client = record.sampled[0]
    order = truth.sample_order[client]
    model = transcript.build_model(record.params_before)
    knowledge = Knowledge.from_dataset(digits, model, num_samples=len(order), algorithm="fedavg", lr=0.1, batch_size=4)

    predicted = make_upload_function(knowledge)(
        transcript.layout.unflatten(record.params_before), digits.inputs[order], digits.targets[order]
    )

    assert knowledge.steps == -(-len(order) // 4)
    assert torch.allclose(predicted, truth.update_of(client), atol=1e-6)


def test_total_variation_is_zero_for_constant_images_and_positive_otherwise() -> None:
    assert total_variation(torch.ones(2, 3, 5, 5)).item() == 0.0
    assert total_variation(torch.eye(5).expand(1, 1, 5, 5)).item() > 0.0
