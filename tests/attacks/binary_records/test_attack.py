"""``binary_records`` on simulated deployments: what each observer recovers of a client's records."""

from collections import Counter

import pytest
import torch

from attacks import ATTACKS, Knowledge
from attacks.binary_records import (
    BinaryRecordsAttack,
    BinaryRecordsResult,
    effective_pairs,
    minimum_rounds,
)
from leakage import create_model, load_dataset, simulate
from leakage.errors import ConfigError, ThreatModelError
from leakage.transcript import Transcript

FEATURES = 6
DATASET_SIZE = 200


def _deployment(
    records: int,
    *,
    features: int = FEATURES,
    scheme: str = "plain",
    clients: int = 5,
    batch_size: int | None = 16,
    rounds: int | None = None,
    algorithm: str = "fedsgd",
    seed: int = 0,
) -> Transcript:
    return simulate(
        dataset="binary_features",
        dataset_options={"n_features": features, "n_samples": DATASET_SIZE},
        model="logreg",
        loss="taylor_logistic",
        algorithm=algorithm,
        partition="target",
        partition_options={"target_size": records},
        batch_size=batch_size,
        n_clients=clients,
        rounds=minimum_rounds(features) + 3 if rounds is None else rounds,
        scheme=scheme,
        seed=seed,
    )


def _true_records(transcript: Transcript) -> Counter[tuple[int, ...]]:
    data = load_dataset("binary_features", n_features=FEATURES, n_samples=DATASET_SIZE)
    indices = transcript.truth.partition[0]
    rows = torch.cat([data.inputs[indices], data.targets[indices, None].float()], dim=1).long()
    return Counter(tuple(row) for row in rows.tolist())


def _found_records(result: BinaryRecordsResult) -> Counter[tuple[int, ...]]:
    assert result.features is not None and result.labels is not None
    rows = torch.cat([result.features, result.labels[:, None].float()], dim=1).long()
    return Counter(tuple(row) for row in rows.tolist())


def _knowledge(**facts: object) -> Knowledge:
    model = create_model("logreg", input_shape=(FEATURES,), num_classes=2, generator=torch.Generator())
    return Knowledge(model=model, input_shape=(FEATURES,), num_classes=2, **facts)  # type: ignore[arg-type]


def test_the_server_recovers_a_single_record_exactly() -> None:
    transcript = _deployment(1)

    result = BinaryRecordsAttack(client=0).run(transcript.views_of("server"))

    assert result.status == "recovered" and result.num_samples == 1
    assert _found_records(result) == _true_records(transcript)


def test_the_server_recovers_every_record_of_a_client_with_several() -> None:
    transcript = _deployment(5, seed=1)

    result = BinaryRecordsAttack(client=0).run(transcript.views_of("server"), _knowledge())

    assert result.status == "recovered" and result.num_samples == 5  # the disclosed weight
    assert _found_records(result) == _true_records(transcript)
    assert result.rounds_used == minimum_rounds(FEATURES) + 3
    assert not any("inferred" in text for text in result.assumptions)


def test_a_peer_recovers_the_other_clients_records_under_homomorphic_aggregation() -> None:
    transcript = _deployment(3, scheme="he", clients=2)

    result = BinaryRecordsAttack(client=0).run(transcript.views_of("client:1"))

    assert result.status == "recovered" and result.num_samples == 3  # total weight minus its own
    assert _found_records(result) == _true_records(transcript)
    assert any("round difference" in text for text in result.assumptions)


def test_a_peer_recovers_the_other_clients_records_under_secure_aggregation() -> None:
    transcript = _deployment(3, scheme="secagg", clients=2)

    result = BinaryRecordsAttack(client=0).run(transcript.views_of("client:1"), _knowledge(client_weights={0: 3.0}))

    assert result.status == "recovered"
    assert _found_records(result) == _true_records(transcript)


def test_a_wrongly_assumed_weight_is_detected_instead_of_returning_garbage() -> None:
    transcript = _deployment(3, scheme="secagg", clients=2)  # the peer assumes a full batch of 16

    result = BinaryRecordsAttack(client=0).run(transcript.views_of("client:1"))

    assert result.status == "ill_conditioned" and result.features is None


def test_full_batch_training_is_detected_as_ill_conditioned() -> None:
    transcript = _deployment(3, features=16, batch_size=None, rounds=2 * 17)  # plain gradient descent
    lenient = BinaryRecordsAttack(client=0, max_condition=1e30, max_uncertainty=1e30)

    result = BinaryRecordsAttack(client=0).run(transcript.views_of("server"))
    counts_only = lenient.run(transcript.views_of("server"))

    assert result.status == "ill_conditioned" and result.features is None and result.labels is None
    assert result.condition_number > 1e8 and "collinear" in result.reason
    assert counts_only.status == "ill_conditioned" and "not integral" in counts_only.reason


def test_too_few_rounds_are_reported_as_ill_conditioned() -> None:
    transcript = _deployment(2, rounds=minimum_rounds(FEATURES) - 1)

    result = BinaryRecordsAttack(client=0).run(transcript.views_of("server"))

    assert result.status == "ill_conditioned" and result.features is None


def test_a_wrong_declared_count_is_reported_not_forced() -> None:
    transcript = _deployment(3)

    result = BinaryRecordsAttack(client=0, num_samples=4).run(transcript.views_of("server"))

    assert result.status == "ill_conditioned" and "n = 4" in result.reason


def test_the_server_under_secure_aggregation_with_many_clients_sees_no_upload() -> None:
    transcript = _deployment(3, scheme="secagg", rounds=2)

    with pytest.raises(ThreatModelError, match="client 0"):
        BinaryRecordsAttack(client=0).run(transcript.views_of("server"))


def test_fedavg_uploads_are_refused() -> None:
    transcript = _deployment(3, algorithm="fedavg", rounds=2)

    with pytest.raises(ThreatModelError, match="FedSGD"):
        BinaryRecordsAttack(client=0).run(transcript.views_of("server"))


def test_a_model_that_is_not_a_two_output_logistic_regression_is_refused() -> None:
    transcript = _deployment(3, rounds=2)
    mlp = create_model("mlp", input_shape=(FEATURES,), num_classes=2, generator=torch.Generator(), hidden=(2,))
    knowledge = Knowledge(model=mlp, input_shape=(FEATURES,), num_classes=2)

    with pytest.raises(ThreatModelError, match="logistic regression"):
        BinaryRecordsAttack(client=0).run(transcript.views_of("server"), knowledge)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("client", -1),
        ("client", 1.5),
        ("num_samples", 0),
        ("max_samples", 0),
        ("max_nodes", True),
        ("integrality_tolerance", 0.7),
        ("integrality_tolerance", 0),
        ("max_condition", -1.0),
        ("max_residual", float("nan")),
    ],
)
def test_bad_options_are_refused_by_name(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        BinaryRecordsAttack(**{option: value})  # type: ignore[arg-type]


def test_the_attack_is_registered_and_deterministic() -> None:
    transcript = _deployment(4, seed=2)
    views = transcript.views_of("server")
    before = [view.params_before.clone() for view in views if view.params_before is not None]

    first = ATTACKS.create("binary_records", client=0).run(views)
    second = ATTACKS.create("binary_records", client=0).run(views)

    assert ATTACKS.get("binary_records") is BinaryRecordsAttack
    timings = ("seconds", "search_seconds")
    assert {k: v for k, v in first.to_dict().items() if k not in timings} == {
        k: v for k, v in second.to_dict().items() if k not in timings
    }
    assert all(torch.equal(view.params_before, old) for view, old in zip(views, before, strict=False))


def test_effective_pairs_match_the_autograd_gradient_of_the_taylor_loss() -> None:
    model = create_model("logreg", input_shape=(3,), num_classes=2, generator=torch.Generator().manual_seed(0))
    inputs = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    targets = torch.tensor([1, 0])
    logits = model(inputs)
    logit = logits[:, 1] - logits[:, 0]
    loss = (torch.log(torch.tensor(2.0)) - (2.0 * targets - 1.0) * logit / 2 + logit**2 / 8).mean()
    flat_gradient = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])
    flat_params = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    from leakage.models import ParameterLayout

    weights, gradients = effective_pairs(ParameterLayout.of(model), [flat_params], [-0.1 * flat_gradient], [0.1])

    augmented = torch.cat([inputs, torch.ones(2, 1)], dim=1).double()
    expected = -(augmented.T @ (2.0 * targets - 1.0).double()) / 4 + augmented.T @ augmented @ weights[0] / 8
    assert torch.allclose(gradients[0], expected, atol=1e-6)
