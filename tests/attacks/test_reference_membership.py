"""LiRA and RMIA: their kernels against loops over records, and the attacks against a model that overfits."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

from attacks import (
    ATTACKS,
    Knowledge,
    LiRAAttack,
    LossThresholdAttack,
    MembershipScores,
    RMIAAttack,
    create_attack,
    lira_scores,
    marginal_probabilities,
    reference_logits,
    reference_memberships,
    rmia_scores,
    train_reference_models,
)
from leakage.data import Dataset
from leakage.errors import ConfigError, ThreatModelError
from leakage.models import ParameterLayout, create_model
from leakage.views import RoundView

EPOCHS, LR, BATCH = 40, 0.2, 10


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Train on one thread: these kernels are tiny, and a second thread only adds synchronisation
    that costs ten times the work when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _released(digits: Dataset, trained: torch.Tensor, *, targets: torch.Tensor | None = None, seed: int = 0):
    """A small MLP trained centrally on ``trained`` (the same trainer as the reference models), as the public sees it."""
    net = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator(), hidden=(32,))
    mask = torch.zeros(1, len(digits), dtype=torch.bool)
    mask[0, trained] = True
    labels = digits.targets if targets is None else targets
    params = train_reference_models(net, mask, digits.inputs, labels, epochs=EPOCHS, lr=LR, batch_size=BATCH,
                                    generator=torch.Generator().manual_seed(seed))
    flat = torch.cat([params[name][0].reshape(-1) for name in ParameterLayout.of(net).names])
    accuracy = (reference_logits(net, params, digits.inputs[trained])[0].argmax(1) == labels[trained]).double().mean()
    return net, RoundView(0, "public", None, flat), float(accuracy)


@pytest.fixture(scope="module")
def overfit(digits):
    """100 training records, 100 others: the candidates; the remaining digits are the attacker's auxiliary data."""
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    members, others, auxiliary = order[:100], order[100:200], order[200:]
    net, view, accuracy = _released(digits, members)
    knowledge = Knowledge.from_dataset(digits, net, lr=LR, batch_size=BATCH,
                                       candidates=digits.subset(torch.cat([members, others])),
                                       auxiliary=digits.subset(auxiliary))
    return view, knowledge, np.r_[np.ones(100), np.zeros(100)], accuracy


def _tpr_at(truth, scores, fpr_limit: float) -> float:
    fpr, tpr, _ = roc_curve(truth, scores)
    return float(tpr[fpr <= fpr_limit].max())


def test_reference_memberships_keep_candidates_out_offline_and_in_for_exactly_half_online() -> None:
    offline = reference_memberships(10, 30, models=4, mode="offline", records_per_model=12,
                                    generator=torch.Generator())
    online = reference_memberships(10, 30, models=6, mode="online", records_per_model=12,
                                   generator=torch.Generator())

    assert not offline[:, :10].any() and offline.sum(dim=1).tolist() == [12] * 4
    assert online[:, :10].sum(dim=0).tolist() == [3] * 10 and online.sum(dim=1).tolist() == [12] * 6
    assert torch.equal(online[0::2, :10], ~online[1::2, :10])  # pairs split the candidates
    with pytest.raises(ThreatModelError, match="records_per_model=40"):
        reference_memberships(10, 30, models=2, mode="offline", records_per_model=40, generator=torch.Generator())


def test_lira_scores_are_the_gaussian_tests_computed_record_by_record() -> None:
    generator = torch.Generator().manual_seed(0)
    references = torch.randn(8, 5, generator=generator, dtype=torch.float64) * 2 + 1
    target = torch.randn(5, generator=generator, dtype=torch.float64)
    is_in = torch.zeros(8, 5, dtype=torch.bool)
    is_in[::2] = True

    offline = lira_scores(target, references[1::2], is_in[1::2], mode="offline", fixed_variance=False)
    online = lira_scores(target, references, is_in, mode="online", fixed_variance=False)
    pooled = lira_scores(target, references, is_in, mode="online", fixed_variance=True)

    inside, outside = references[::2].numpy(), references[1::2].numpy()
    pooled_in = math.sqrt(sum(np.var(inside[:, m], ddof=1) for m in range(5)) / 5)
    pooled_out = math.sqrt(sum(np.var(outside[:, m], ddof=1) for m in range(5)) / 5)
    for m in range(5):
        mean_in, mean_out = inside[:, m].mean(), outside[:, m].mean()
        std_in, std_out = inside[:, m].std(ddof=1), outside[:, m].std(ddof=1)
        value = float(target[m])
        assert offline[m].item() == pytest.approx((value - mean_out) / std_out)
        assert online[m].item() == pytest.approx(
            stats.norm.logpdf(value, mean_in, std_in) - stats.norm.logpdf(value, mean_out, std_out))
        assert pooled[m].item() == pytest.approx(
            stats.norm.logpdf(value, mean_in, pooled_in) - stats.norm.logpdf(value, mean_out, pooled_out))


def test_rmia_scores_count_the_population_records_each_candidate_beats() -> None:
    generator = torch.Generator().manual_seed(1)
    probabilities = torch.rand(6, 9, generator=generator, dtype=torch.float64)
    is_in = torch.rand(6, 9, generator=generator) < 0.5
    is_in[:, 0] = False
    target = torch.rand(9, generator=generator, dtype=torch.float64)

    marginal = marginal_probabilities(probabilities, is_in, mode="online", offline_a=0.4)
    offline = marginal_probabilities(probabilities, is_in, mode="offline", offline_a=0.4)
    ratios = target / marginal
    scores = rmia_scores(ratios[:3], ratios[3:], gamma=1.5)

    for r in range(9):
        inside, outside = probabilities[is_in[:, r], r], probabilities[~is_in[:, r], r]
        approximated = ((1.4 * outside.mean() + 0.6) / 2).item()
        assert offline[r].item() == pytest.approx(approximated)
        expected = (inside.mean() + outside.mean()).item() / 2 if len(inside) else approximated
        assert marginal[r].item() == pytest.approx(expected)
    for x in range(3):
        beaten = sum(ratios[x].item() / ratios[z].item() > 1.5 for z in range(3, 9))
        assert scores[x].item() == pytest.approx(beaten / 6)


def test_the_toy_target_overfits(overfit) -> None:
    assert overfit[3] == 1.0


@pytest.mark.parametrize(("name", "options"), [
    ("lira", {"mode": "offline"}),
    ("lira", {"mode": "online"}),
    ("lira", {"mode": "online", "fixed_variance": True}),
    ("rmia", {"mode": "offline"}),
    ("rmia", {"mode": "online"}),
])
def test_reference_attacks_beat_the_loss_threshold_on_an_overfit_model(overfit, name, options) -> None:
    view, knowledge, truth, _ = overfit
    attack = create_attack(name, reference_models=8, epochs=EPOCHS, records_per_model=100, **options)

    result = attack.run(view, knowledge, generator=torch.Generator().manual_seed(1))
    baseline = LossThresholdAttack().run(view, knowledge).scores.numpy()

    scores = result.scores.numpy()
    assert isinstance(result, MembershipScores) and result.scores.shape == (200,)
    assert result.details["reference_models"] == 8 and result.details["records_per_model"] == 100
    assert roc_auc_score(truth, scores) > max(0.65, roc_auc_score(truth, baseline) + 0.03)  # the loss gives 0.67
    assert _tpr_at(truth, scores, 0.05) > _tpr_at(truth, baseline, 0.05)


def test_mislabeled_canaries_are_found(digits) -> None:
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(2))
    canaries, members, auxiliary = order[:40], order[40:140], order[140:]
    labels = digits.targets.clone()
    labels[canaries] = (labels[canaries] + 1 + torch.arange(40) % 9) % 10  # a wrong label each
    net, view, accuracy = _released(digits, torch.cat([canaries[:20], members]), targets=labels)
    candidates = replace(digits.subset(canaries), targets=labels[canaries])
    knowledge = Knowledge.from_dataset(digits, net, lr=LR, batch_size=BATCH, candidates=candidates,
                                       auxiliary=digits.subset(auxiliary))
    truth = np.r_[np.ones(20), np.zeros(20)]

    lira = LiRAAttack(reference_models=8, epochs=EPOCHS, records_per_model=120).run(view, knowledge)
    rmia = RMIAAttack(reference_models=4, epochs=EPOCHS, records_per_model=120).run(view, knowledge)

    assert accuracy == 1.0  # the canaries' wrong labels were learnt
    assert roc_auc_score(truth, lira.scores.numpy()) > 0.95
    assert roc_auc_score(truth, rmia.scores.numpy()) > 0.95


@pytest.mark.parametrize("name", ["lira", "rmia"])
def test_the_same_generator_gives_the_same_scores_and_knowledge_is_left_alone(overfit, name) -> None:
    view, knowledge, _, _ = overfit
    weights = [p.detach().clone() for p in knowledge.model.parameters()]
    attack = create_attack(name, reference_models=2, epochs=2, records_per_model=50)

    first, again, other = (attack.run(view, knowledge, generator=torch.Generator().manual_seed(seed))
                           for seed in (3, 3, 4))

    assert torch.equal(first.scores, again.scores) and not torch.equal(first.scores, other.scores)
    assert all(torch.equal(a, b) for a, b in zip(weights, knowledge.model.parameters()))
    assert ATTACKS.get(name).runs_as("public") and first.observer == "public"


@pytest.mark.parametrize("name", ["lira", "rmia"])
def test_an_attack_without_auxiliary_data_or_learning_rate_says_so_in_one_line(overfit, name) -> None:
    view, knowledge, _, _ = overfit
    no_auxiliary = Knowledge.from_dataset(knowledge.candidates, knowledge.model, lr=LR,
                                          candidates=knowledge.candidates)
    no_lr = Knowledge.from_dataset(knowledge.candidates, knowledge.model, candidates=knowledge.candidates,
                                   auxiliary=knowledge.auxiliary)

    with pytest.raises(ThreatModelError, match="knowledge.auxiliary") as missing:
        create_attack(name, reference_models=2).run(view, no_auxiliary)
    with pytest.raises(ThreatModelError, match="knowledge.lr"):
        create_attack(name, reference_models=2).run(view, no_lr)
    assert "\n" not in str(missing.value)


def test_an_architecture_with_batch_normalisation_is_ruled_out_as_a_threat_model_error(overfit) -> None:
    _, knowledge, _, _ = overfit
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10), torch.nn.BatchNorm1d(10))
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    known = replace(knowledge, model=net)

    with pytest.raises(ThreatModelError, match="batch normalisation"):
        LiRAAttack(reference_models=2).run(RoundView(0, "public", None, flat), known)


@pytest.mark.parametrize(("name", "options", "message"), [
    ("lira", {"mode": "shadow"}, "mode must be one of offline, online, got 'shadow'"),
    ("lira", {"mode": "online", "reference_models": 3}, "reference_models must be even, got 3"),
    ("lira", {"reference_models": 1}, "reference_models must be >= 2 offline, got 1"),
    ("lira", {"mode": "online", "reference_models": 2, "fixed_variance": True},
     "reference_models must be >= 4 online, got 2"),
    ("lira", {"fixed_variance": 1}, "fixed_variance must be true or false"),
    ("rmia", {"gamma": 0.0}, "gamma must be a finite number > 0"),
    ("rmia", {"offline_a": 1.5}, "offline_a must be a number in \\[0, 1\\]"),
    ("rmia", {"epochs": 0}, "epochs must be an integer >= 1"),
    ("rmia", {"records_per_model": 0}, "records_per_model must be an integer >= 1 or None"),
])
def test_bad_options_are_refused_by_name(name, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        create_attack(name, **options)
