import pytest
import torch

from attacks import ATTACKS, Knowledge, Observation, create_attack
from leakage import create_model, simulate
from leakage.errors import ConfigError, ThreatModelError, UnknownNameError


def _model(digits) -> torch.nn.Module:
    return create_model("mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0), hidden=(16,))


def test_an_observation_comes_from_the_server_view_or_the_clients_own_view(digits) -> None:
    transcript = simulate(dataset=digits, model="mlp", model_options={"hidden": (16,)}, n_clients=3, rounds=1, seed=0)
    record = transcript.rounds[0]

    from_server = Observation.from_view(record.views["server"], client=1)
    from_client = Observation.from_view(record.views["client:1"])

    assert torch.equal(from_server.value, transcript.truth.rounds[0].update_of(1))
    assert torch.equal(from_client.value, from_server.value) and from_client.client == 1
    with pytest.raises(ThreatModelError, match="received 3 plaintext updates; name the target client"):
        Observation.from_view(record.views["server"])


def test_a_masked_view_has_no_plaintext_update_to_attack(digits) -> None:
    transcript = simulate(dataset=digits, scheme="secagg", model="logreg", n_clients=3, rounds=1, seed=0)

    with pytest.raises(ThreatModelError, match="holds no plaintext update of client 1"):
        Observation.from_view(transcript.rounds[0].views["server"], client=1)
    with pytest.raises(ThreatModelError, match="did not see the parameters"):
        Observation.from_view(transcript.rounds[0].views["public"], client=1)


def test_gradients_must_match_the_declared_architecture(digits) -> None:
    model = _model(digits)
    other = create_model("logreg", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator())
    grads = [torch.zeros_like(p) for p in other.parameters()]

    with pytest.raises(ThreatModelError, match="do not match the model's parameters"):
        Observation.from_gradients(model, grads)
    observation = Observation.from_gradients(other, grads)
    with pytest.raises(ThreatModelError, match="does not match the view"):
        create_attack("idlg").run(observation, Knowledge.from_dataset(digits, model))


def test_a_fedsgd_update_becomes_a_gradient_only_with_the_learning_rate(digits) -> None:
    model = _model(digits)
    observation = Observation(torch.zeros(4), torch.tensor([0.2, -0.4, 0.0, 0.1]), "update")

    gradient = observation.gradient(Knowledge.from_dataset(digits, model, lr=0.1))

    assert torch.allclose(gradient, torch.tensor([-2.0, 4.0, 0.0, -1.0]))
    with pytest.raises(ThreatModelError, match="needs knowledge.lr"):
        observation.gradient(Knowledge.from_dataset(digits, model))
    with pytest.raises(ThreatModelError, match="not a gradient"):
        observation.gradient(Knowledge.from_dataset(digits, model, lr=0.1, algorithm="fedavg", num_samples=4, batch_size=2))


@pytest.mark.parametrize(
    "facts, message",
    [
        ({"num_samples": 0}, "knowledge.num_samples must be an integer >= 1"),
        ({"algorithm": "sgd"}, "knowledge.algorithm must be one of fedsgd, fedavg"),
        ({"lr": -1.0}, "knowledge.lr must be a finite number > 0"),
        ({"value_range": (1.0, 0.0)}, "knowledge.value_range must be"),
        ({"labels": torch.tensor([3, 11])}, r"knowledge.labels must hold num_samples=1 classes in \[0, 10\)"),
    ],
)
def test_bad_knowledge_names_the_field(digits, facts: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Knowledge.from_dataset(digits, _model(digits), **facts)


def test_unknown_attacks_and_options_are_rejected() -> None:
    choices = ", ".join(ATTACKS.names())
    assert choices.startswith("aggregate, analytic, ") and "inverting_gradients" in choices
    with pytest.raises(UnknownNameError, match=f"unknown attack 'dlg2'; choose one of: {choices}$"):
        create_attack("dlg2")
    with pytest.raises(ConfigError, match="unknown option 'steps' for attack 'dlg'"):
        create_attack("dlg", steps=3)
    with pytest.raises(ConfigError, match="restarts must be an integer >= 1"):
        create_attack("inverting_gradients", restarts=0)
