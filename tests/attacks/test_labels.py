import pytest
import torch

from attacks import Knowledge, Observation, recover_labels
from leakage import create_model, simulate
from leakage.errors import ConfigError, ThreatModelError
from leakage.metrics import label_multiset_accuracy


def _gradient_observation(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> Observation:
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    return Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters())))


@pytest.mark.parametrize("model_name", ["logreg", "mlp", "lenet"])
def test_one_samples_label_is_read_exactly_from_its_gradient(digits, model_name: str) -> None:
    for index in range(10):
        model = create_model(model_name, input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(index))
        observation = _gradient_observation(model, digits.inputs[index : index + 1], digits.targets[index : index + 1])

        labels = recover_labels(observation, Knowledge.from_dataset(digits, model))

        assert labels.tolist() == [int(digits.targets[index])]


def test_a_multi_step_fedavg_update_gives_the_label_with_its_sign_flipped(digits) -> None:
    transcript = simulate(
        dataset=digits, model="mlp", n_clients=1797, clients_per_round=3, rounds=1, algorithm="fedavg",
        local_epochs=4, batch_size=1, lr=0.05, seed=2,
    )
    record = transcript.rounds[0]
    for client in record.sampled:
        (index,) = transcript.truth.partition[client].tolist()
        knowledge = Knowledge.from_dataset(
            digits, transcript.build_model(record.params_before), algorithm="fedavg", lr=0.05, local_epochs=4, batch_size=1
        )

        labels = recover_labels(Observation.from_view(record.views["server"], client), knowledge)

        assert knowledge.steps == 4 and labels.tolist() == [int(digits.targets[index])]


def test_counts_recover_a_batch_with_repeated_labels(digits) -> None:
    accuracies = []
    for seed in range(5):
        model = create_model("mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(seed))
        indices = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))[:16]
        observation = _gradient_observation(model, digits.inputs[indices], digits.targets[indices])

        labels = recover_labels(observation, Knowledge.from_dataset(digits, model, num_samples=16), strategy="counts")

        assert labels.numel() == 16
        accuracies.append(float(label_multiset_accuracy(labels, digits.targets[indices])))
    assert sum(accuracies) / len(accuracies) >= 0.9


def test_distinct_labels_need_no_more_samples_than_classes(digits) -> None:
    model = create_model("mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator())
    observation = _gradient_observation(model, digits.inputs[:12], digits.targets[:12])

    with pytest.raises(ConfigError, match="num_samples=12 is larger than label strategy 'distinct' can support"):
        recover_labels(observation, Knowledge.from_dataset(digits, model, num_samples=12), strategy="distinct")
    with pytest.raises(ConfigError, match="label strategy must be one of"):
        recover_labels(observation, Knowledge.from_dataset(digits, model, num_samples=12), strategy="guess")


def test_counts_need_a_bias_in_the_last_layer(digits) -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10, bias=False))
    observation = _gradient_observation(model, digits.inputs[:3], digits.targets[:3])

    with pytest.raises(ThreatModelError, match="label counts need a bias"):
        recover_labels(observation, Knowledge.from_dataset(digits, model, num_samples=3), strategy="counts")
