"""Analytic inversion: exact recovery from a first linear layer, and its refusals."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from attacks.analytic import (
    AnalyticInversion,
    class_row_estimate,
    first_layer,
    invert_rank_one,
)
from attacks.base import ATTACKS, Knowledge, Observation, create_attack
from leakage import ConfigError, ThreatModelError, simulate
from leakage.data import Dataset
from leakage.models import create_model


def _model(name: str, data: Dataset, seed: int = 0, **options: Any) -> nn.Module:
    return create_model(
        name,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        generator=torch.Generator().manual_seed(seed),
        **options,
    )


def _gradient(model: nn.Module, inputs: Tensor, targets: Tensor) -> Observation:
    loss = nn.functional.cross_entropy(model(inputs), targets)
    return Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters())))


def _fedsgd_update(model: nn.Module, inputs: Tensor, targets: Tensor, lr: float) -> Observation:
    gradient = _gradient(model, inputs, targets)
    return Observation(gradient.params, -lr * gradient.value, "update")


def _lone_rows(model: nn.Module, inputs: Tensor) -> Tensor:
    """Reference loop: per sample, the first-layer units that it alone activates ``[B]``."""
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    active = first(inputs.flatten(1)) > 0
    return torch.stack([(active[i] & (active.sum(0) == 1)).sum() for i in range(len(inputs))])


def _relative_error(recovered: Tensor, truth: Tensor) -> Tensor:
    """Per true sample, the relative error of its closest recovered input ``[B]``."""
    flat_truth, flat_recovered = truth.reshape(len(truth), -1), recovered.reshape(len(recovered), -1)
    distance = torch.cdist(flat_truth.double(), flat_recovered.double())
    error: Tensor = distance.min(1).values / flat_truth.double().norm(dim=1)
    return error


def _match(recovered: Tensor, truth: Tensor) -> Tensor:
    """Index of the recovered input closest to each true sample; fails unless a permutation."""
    distance = torch.cdist(truth.reshape(len(truth), -1).double(), recovered.reshape(len(recovered), -1).double())
    match = distance.argmin(1)
    assert sorted(match.tolist()) == list(range(len(truth)))
    return match


def _psnr(recovered: Tensor, truth: Tensor) -> Tensor:
    """PSNR in dB of raw inputs in [0, 1], per sample."""
    mse = (recovered.double() - truth.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse)


def _distinct_label_indices(data: Dataset, count: int) -> Tensor:
    first_of_class = [int(torch.nonzero(data.targets == label)[0]) for label in range(count)]
    return torch.tensor(first_of_class)


# ---------------------------------------------------------------- single sample


def test_single_sample_gradient_recovers_input_and_label(digits: Dataset) -> None:
    model = _model("mlp", digits)
    inputs, targets = digits.inputs[7:8], digits.targets[7:8]
    observation = _gradient(model, inputs, targets)

    result = AnalyticInversion().run(observation, Knowledge.from_dataset(digits, model))

    assert result.inputs.shape == (1, *digits.input_shape)
    assert float(_relative_error(result.inputs, inputs).max()) < 1e-5
    assert torch.allclose(result.raw_inputs, digits.denormalize(inputs), atol=1e-5)
    assert result.labels.tolist() == targets.tolist()
    assert result.converged and result.objective < 1e-6 and result.objective_evals == 0


def test_single_sample_fedsgd_update_from_server_view(tiny_digits: Dataset) -> None:
    transcript = simulate(
        dataset=tiny_digits, model="mlp", n_clients=3, rounds=1, algorithm="fedsgd", batch_size=1, lr=0.5, seed=3
    )
    record, truth = transcript.rounds[0], transcript.truth.rounds[0]
    # The architecture is declared, not the weights (they come from the view), nor lr.
    knowledge = Knowledge.from_dataset(tiny_digits, _model("mlp", tiny_digits, seed=99))
    attack = AnalyticInversion()

    for client in record.survivors:
        observation = Observation.from_view(record.views["server"], client)
        result = attack.run(observation, knowledge)

        index = truth.sample_order[client]
        assert float(_relative_error(result.inputs, tiny_digits.inputs[index]).max()) < 1e-5
        assert result.labels.tolist() == tiny_digits.targets[index].tolist()
        assert result.converged


def test_single_sample_several_local_steps_is_still_exact(digits: Dataset) -> None:
    # Each of the three FedAvg steps adds a multiple of x^T to every row: still rank one.
    four = digits.subset(torch.arange(4))
    transcript = simulate(dataset=four, n_clients=4, rounds=1, algorithm="fedavg", local_epochs=3, batch_size=1, seed=1)
    knowledge = Knowledge.from_dataset(four, _model("mlp", four), algorithm="fedavg", local_epochs=3, lr=0.1)

    result = AnalyticInversion().run(transcript.rounds[0].views["server"], knowledge, client=2)

    index = transcript.truth.rounds[0].sample_order[2][:1]
    assert float(_relative_error(result.inputs, four.inputs[index]).max()) < 1e-5
    assert result.labels.tolist() == four.targets[index].tolist()


def test_invert_rank_one_matches_a_row_by_row_reference() -> None:
    generator = torch.Generator().manual_seed(0)
    x, delta = torch.randn(6, generator=generator, dtype=torch.float64), torch.randn(5, generator=generator, dtype=torch.float64)
    delta[2] = 0.0  # an inactive unit contributes nothing

    recovered, residual = invert_rank_one(torch.outer(delta, x), delta)

    for row in (0, 1, 3, 4):  # every active row alone gives x
        assert torch.allclose(torch.outer(delta, x)[row] / delta[row], x)
    assert torch.allclose(recovered, x) and residual < 1e-12


# ---------------------------------------------------------------- batches, ReLU rows


@pytest.mark.parametrize("kind", ["gradient", "update"])
def test_batch_of_four_recovered_from_relu_rows(digits: Dataset, kind: str) -> None:
    model = _model("mlp", digits, hidden=(512,))
    index = torch.tensor([11, 250, 731, 1402])
    inputs, targets = digits.inputs[index], digits.targets[index]
    observation = _gradient(model, inputs, targets) if kind == "gradient" else _fedsgd_update(model, inputs, targets, 0.1)

    result = AnalyticInversion().run(observation, Knowledge.from_dataset(digits, model, num_samples=4))

    match = _match(result.inputs, inputs)
    assert float(_relative_error(result.inputs, inputs).max()) < 1e-4
    assert result.labels[match].tolist() == targets.tolist()  # each input carries its own label
    assert result.converged and result.objective < 1e-6
    alone = _lone_rows(model, inputs)
    for sample, position in enumerate(match.tolist()):
        assert result.details[f"rows_sample_{position}"] == float(alone[sample])


def test_relu_rows_on_a_hand_built_layer() -> None:
    # Units 0 and 1 see only x, unit 2 only y, unit 3 both (a mixture row).
    x, y = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0, 0.5, 2.0])
    first, last = nn.Linear(3, 4), nn.Linear(4, 2)
    model = nn.Sequential(first, nn.ReLU(), last)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0, 0], [1, 1, 0], [-1, 0, 0], [0, 0, 1]]))
        first.bias.zero_()
        last.weight.copy_(torch.tensor([[1.0, -1.0, 0.5, 2.0], [-0.5, 1.0, 1.0, -1.0]]))
    observation = _gradient(model, torch.stack([x, y]), torch.tensor([0, 1]))
    knowledge = Knowledge(model=model, input_shape=(3,), num_classes=2, num_samples=2)

    result = AnalyticInversion().run(observation, knowledge)

    # y has one lone row, as has the mixture: the activation pattern tells them apart.
    assert torch.allclose(result.inputs, torch.stack([x, y]), atol=1e-6)
    assert result.details["rows_sample_0"] == 2.0 and result.details["rows_sample_1"] == 1.0
    assert result.labels.tolist() == [0, 1]


def test_relu_rows_prefers_consistency_over_group_size(digits: Dataset) -> None:
    # Eight digits of one class on a random model: pairs of them with near-equal
    # predictions give coinciding mixture rows (two extra groups), and one digit owns a
    # single row. The largest eight groups would be wrong; the ReLU pattern is not.
    model = _model("mlp", digits, seed=41, hidden=(1024,))
    index = torch.tensor([926, 303, 1760, 1256, 1688, 527, 456, 1457])
    inputs, targets = digits.inputs[index], digits.targets[index]
    assert int(_lone_rows(model, inputs).min()) == 1

    result = AnalyticInversion().run(_gradient(model, inputs, targets), Knowledge.from_dataset(digits, model, num_samples=8))

    assert result.details["isolated_inputs"] > 8
    assert float(_relative_error(result.inputs, inputs).max()) < 1e-4 and result.converged
    assert result.labels[_match(result.inputs, inputs)].tolist() == targets.tolist()


def test_relu_rows_after_several_local_steps_recovers_but_does_not_claim_convergence(digits: Dataset) -> None:
    data = digits.subset(torch.arange(16))
    transcript = simulate(
        dataset=data, n_clients=4, rounds=1, algorithm="fedavg", local_epochs=2, batch_size=2,
        model_options={"hidden": (512,)}, seed=0,
    )
    knowledge = Knowledge.from_dataset(
        data, _model("mlp", data, hidden=(512,)), num_samples=4, algorithm="fedavg", local_epochs=2, batch_size=2, lr=0.1
    )

    result = AnalyticInversion().run(transcript.rounds[0].views["server"], knowledge, client=0)

    truth = data.inputs[transcript.truth.partition[0]]
    assert float(_relative_error(result.inputs, truth).max()) < 1e-4
    assert not result.converged and result.objective > 1e-3


def test_batch_too_large_for_the_layer_is_refused(digits: Dataset) -> None:
    model = _model("mlp", digits, hidden=(16,))
    observation = _gradient(model, digits.inputs[:12], digits.targets[:12])

    with pytest.raises(ThreatModelError, match="could not isolate 12 samples"):
        AnalyticInversion().run(observation, Knowledge.from_dataset(digits, model, num_samples=12))


# ---------------------------------------------------------------- logistic regression, class rows


def test_class_rows_estimate_has_the_stated_error_term(digits: Dataset) -> None:
    model = _model("logreg", digits)
    index = _distinct_label_indices(digits, 4)
    inputs, targets = digits.inputs[index].flatten(1).double(), digits.targets[index]
    observation = _gradient(model, digits.inputs[index], targets)
    weight_grad = observation.value[:640].reshape(10, 64).double()
    bias_grad = observation.value[640:].double()

    estimate = class_row_estimate(weight_grad, bias_grad, targets)

    probabilities = torch.softmax(model(digits.inputs[index]).double(), -1).detach()[:, targets]  # p_j,y_i: [B, B]
    for i in range(4):
        others = [j for j in range(4) if j != i]
        error = sum(probabilities[j, i] * (inputs[i] - inputs[j]) for j in others) / (1 - probabilities[:, i].sum())
        assert torch.allclose(estimate[i], inputs[i] + error, rtol=1e-4, atol=1e-5)


def test_class_rows_on_logreg_recovers_distinct_labels(digits: Dataset) -> None:
    model = _model("logreg", digits)
    index = _distinct_label_indices(digits, 4)
    inputs, targets = digits.inputs[index], digits.targets[index]
    observation = _fedsgd_update(model, inputs, targets, lr=0.1)
    knowledge = Knowledge.from_dataset(digits, model, num_samples=4)

    rough = AnalyticInversion(refine_steps=0).run(observation, knowledge)
    refined = AnalyticInversion().run(observation, knowledge)

    raw = digits.denormalize(inputs)
    # Near-uniform predictions at initialisation put p_jc ~ 0.1 into the error term, so
    # the unrefined rows are rough (10 to 26 dB here, the mean digit scores 11 to 12 dB).
    # Solving the equations leaves only float32 rounding of the gradient, relative error
    # ~1e-7 or about 140 dB on [0, 1] (measured 152 dB); 100 dB leaves a wide margin.
    assert not rough.converged and rough.objective > 1e-2
    assert float(_psnr(refined.raw_inputs, raw).min()) > 100.0 and refined.converged
    assert float(_psnr(refined.raw_inputs, raw).min()) > float(_psnr(rough.raw_inputs, raw).max())
    assert refined.labels.tolist() == targets.tolist()  # sorted, each aligned with its sample
    assert refined.details["refine_steps"] > 0 and refined.objective_evals > 1


def test_class_rows_refuses_more_samples_than_classes(digits: Dataset) -> None:
    model = _model("logreg", digits)
    observation = _gradient(model, digits.inputs[:11], digits.targets[:11])

    with pytest.raises(ConfigError, match="num_samples=11"):
        AnalyticInversion().run(observation, Knowledge.from_dataset(digits, model, num_samples=11))


def test_class_rows_refuses_declared_labels_that_repeat(digits: Dataset) -> None:
    model = _model("logreg", digits)
    observation = _gradient(model, digits.inputs[:2], digits.targets[:2])
    knowledge = Knowledge.from_dataset(digits, model, num_samples=2, labels=torch.tensor([3, 3]))

    with pytest.raises(ConfigError, match=r"distinct labels, got knowledge.labels \[3, 3\]"):
        AnalyticInversion().run(observation, knowledge)


def test_class_rows_with_as_many_samples_as_classes_is_not_converged(digits: Dataset) -> None:
    model = _model("logreg", digits)
    index = _distinct_label_indices(digits, 10)
    observation = _gradient(model, digits.inputs[index], digits.targets[index])

    result = AnalyticInversion().run(observation, Knowledge.from_dataset(digits, model, num_samples=10))

    assert result.labels.tolist() == list(range(10)) and not result.converged


# ---------------------------------------------------------------- threat model and options


def test_convolutional_first_layer_is_refused(digits: Dataset) -> None:
    model = _model("lenet", digits)
    observation = _gradient(model, digits.inputs[:1], digits.targets[:1])

    with pytest.raises(ThreatModelError, match="nn.Linear with a bias, got Conv2d"):
        AnalyticInversion().run(observation, Knowledge.from_dataset(digits, model))


def test_linear_without_bias_is_refused() -> None:
    model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2))
    observation = _gradient(model, torch.ones(1, 4), torch.tensor([1]))

    with pytest.raises(ThreatModelError, match="got Linear without bias"):
        AnalyticInversion().run(observation, Knowledge(model=model, input_shape=(4,), num_classes=2))


def test_view_of_another_architecture_is_refused(tiny_digits: Dataset) -> None:
    transcript = simulate(dataset=tiny_digits, n_clients=2, rounds=1, algorithm="fedsgd", batch_size=1, seed=0)
    knowledge = Knowledge.from_dataset(tiny_digits, _model("mlp", tiny_digits, hidden=(64,)))

    with pytest.raises(ThreatModelError, match="does not match the view"):
        AnalyticInversion().run(transcript.rounds[0].views["server"], knowledge, client=0)


def test_zero_gradient_is_refused(digits: Dataset) -> None:
    model = _model("mlp", digits)
    observation = _gradient(model, digits.inputs[:1], digits.targets[:1])
    silent = Observation(observation.params, torch.zeros_like(observation.value), "gradient")

    with pytest.raises(ThreatModelError, match="bias gradient is zero"):
        AnalyticInversion().run(silent, Knowledge.from_dataset(digits, model))


@pytest.mark.parametrize(
    ("method", "model_name", "count", "error", "message"),
    [
        ("single", "mlp", 4, ConfigError, "num_samples is 4"),
        ("relu_rows", "logreg", 4, ThreatModelError, "needs nn.ReLU"),
        ("class_rows", "mlp", 4, ThreatModelError, "to be the classifier"),
    ],
)
def test_method_that_does_not_fit_the_model_is_refused(
    digits: Dataset, method: Any, model_name: str, count: int, error: type[Exception], message: str
) -> None:
    model = _model(model_name, digits)
    observation = _gradient(model, digits.inputs[:count], digits.targets[:count])

    with pytest.raises(error, match=message):
        AnalyticInversion(method=method).run(observation, Knowledge.from_dataset(digits, model, num_samples=count))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "magic"}, "method must be one of auto, single, relu_rows, class_rows, got 'magic'"),
        ({"tolerance": 0.0}, "tolerance must be a finite number > 0"),
        ({"tolerance": float("nan")}, "tolerance must be a finite number > 0"),
        ({"tolerance": 2.0}, r"tolerance must be a relative distance in \(0, 1\)"),
        ({"refine_steps": -1}, "refine_steps must be an integer >= 0"),
        ({"refine_steps": True}, "refine_steps must be an integer >= 0"),
        ({"bogus": 1}, "unknown option 'bogus'"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_attack("analytic", **options)


def test_registered_deterministic_and_pure(digits: Dataset) -> None:
    model = _model("mlp", digits, hidden=(512,))
    observation = _gradient(model, digits.inputs[20:24], digits.targets[20:24])
    before = (observation.value.clone(), [p.detach().clone() for p in model.parameters()])
    knowledge = Knowledge.from_dataset(digits, model, num_samples=4)
    attack = ATTACKS.create("analytic")

    first, second = attack.run(observation, knowledge), attack.run(observation, knowledge)

    assert isinstance(attack, AnalyticInversion)
    assert torch.equal(first.inputs, second.inputs) and torch.equal(first.labels, second.labels)
    assert torch.equal(observation.value, before[0])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before[1]))
    assert not any(module._forward_hooks for module in model.modules())  # the label hook went on a copy
    assert first.to_dict()["attack"] == "analytic"


def test_first_layer_locates_weight_and_bias_in_the_flat_vector(digits: Dataset) -> None:
    model = _model("mlp", digits)

    layer = first_layer(model, digits.input_shape)

    linear = next(m for m in model.modules() if isinstance(m, nn.Linear))
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert layer.name == "1"
    assert torch.equal(flat[layer.weight].reshape(128, 64), linear.weight.detach())
    assert torch.equal(flat[layer.bias], linear.bias.detach())
    assert layer.has_relu and not layer.is_last
    assert first_layer(_model("logreg", digits), digits.input_shape).is_last
