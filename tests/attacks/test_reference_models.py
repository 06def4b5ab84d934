"""Reference models trained together equal models trained one at a time, each on its own records only."""

import copy

import pytest
import torch
import torch.nn.functional as F

from attacks import (
    initial_parameters,
    minibatch_schedule,
    reference_logits,
    scaled_logits,
    train_reference_models,
    true_class_probabilities,
)
from leakage.errors import ConfigError
from leakage.models import create_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Train on one thread: these kernels are tiny, and a second thread only adds synchronisation
    that costs ten times the work when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mask(counts: list[int], records: int, generator: torch.Generator) -> torch.Tensor:
    mask = torch.zeros(len(counts), records, dtype=torch.bool)
    for row, count in enumerate(counts):
        mask[row, torch.randperm(records, generator=generator)[:count]] = True
    return mask


def _one_at_a_time(model, init, schedule, inputs, targets, lr):
    """The slow, obviously correct reference: each model alone, its real batches, autograd SGD."""
    trained = []
    for k in range(schedule.indices.shape[1]):
        net = copy.deepcopy(model)
        with torch.no_grad():
            for name, parameter in net.named_parameters():
                parameter.copy_(init[name][k])
        for indices, weights in zip(schedule.indices[:, k], schedule.weights[:, k]):
            batch = indices[weights > 0]
            if len(batch) == 0:
                continue
            net.zero_grad()
            F.cross_entropy(net(inputs[batch]), targets[batch]).backward()
            with torch.no_grad():
                for parameter in net.parameters():
                    parameter -= lr * parameter.grad
        trained.append({name: p.detach().clone() for name, p in net.named_parameters()})
    return trained


def test_stacked_training_equals_training_each_model_alone_on_the_same_batches(digits) -> None:
    model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator(), hidden=(8,))
    model = model.double()
    inputs, targets = digits.inputs[:40].double(), digits.targets[:40]
    mask = _mask([17, 9, 30, 1], 40, torch.Generator().manual_seed(0))

    stacked = train_reference_models(model, mask, inputs, targets, epochs=3, lr=0.3, batch_size=4,
                                     generator=torch.Generator().manual_seed(5))

    replay = torch.Generator().manual_seed(5)  # the documented order: initialisations, then shuffles
    init = initial_parameters(model, 4, generator=replay)
    schedule = minibatch_schedule(mask, epochs=3, batch_size=4, generator=replay, dtype=torch.float64)
    alone = _one_at_a_time(model, init, schedule, inputs, targets, lr=0.3)
    for k, parameters in enumerate(alone):
        for name, value in parameters.items():
            assert torch.allclose(stacked[name][k], value, rtol=0, atol=1e-10), (k, name)
            assert not torch.equal(value, init[name][k])  # it trained


def test_every_epoch_shuffles_each_models_own_records_into_batches_of_the_batch_size() -> None:
    mask = _mask([7, 3, 10], 12, torch.Generator().manual_seed(1))

    schedule = minibatch_schedule(mask, epochs=2, batch_size=3, generator=torch.Generator(), dtype=torch.float32)

    assert schedule.steps == 2 * 4  # ceil(10 / 3) steps per epoch
    for k in range(3):
        own = set(torch.nonzero(mask[k]).flatten().tolist())
        assert set(schedule.indices[:, k].flatten().tolist()) <= own  # padding repeats its own records too
        for epoch in range(2):
            steps = slice(4 * epoch, 4 * epoch + 4)
            real = schedule.weights[steps, k] > 0
            seen = schedule.indices[steps, k][real].tolist()
            assert sorted(seen) == sorted(own)  # each record once per epoch
            sizes = real.sum(dim=1).tolist()
            expected = [min(3, len(own) - 3 * s) for s in range(4)]
            assert sizes == [max(0, size) for size in expected]
            for step in range(4):
                weights = schedule.weights[4 * epoch + step, k][real[step]]
                assert torch.allclose(weights, torch.full_like(weights, 1 / max(1, sizes[step])))


def test_a_model_never_reads_records_outside_its_mask(digits) -> None:
    model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator(), hidden=(8,))
    inputs, targets = digits.inputs[:30].clone(), digits.targets[:30]
    mask = _mask([12, 20], 30, torch.Generator().manual_seed(2))
    poisoned = inputs.clone()
    poisoned[~mask[0]] = float("nan")  # anything model 0 read of these would make it NaN, even at weight 0

    clean = train_reference_models(model, mask, inputs, targets, epochs=2, lr=0.1, batch_size=5,
                                   generator=torch.Generator().manual_seed(3))
    dirty = train_reference_models(model, mask, poisoned, targets, epochs=2, lr=0.1, batch_size=5,
                                   generator=torch.Generator().manual_seed(3))

    assert all(torch.equal(clean[name][0], dirty[name][0]) for name in clean)
    assert not dirty["1.weight"][1].isfinite().all()  # model 1 did read some of them


def test_the_same_generator_gives_the_same_models_and_the_inputs_are_left_alone(digits) -> None:
    model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator(), hidden=(8,))
    inputs, targets = digits.inputs[:20].clone(), digits.targets[:20].clone()
    mask = _mask([10, 10], 20, torch.Generator())
    before = [p.detach().clone() for p in model.parameters()]

    runs = [train_reference_models(model, mask, inputs, targets, epochs=1, lr=0.1, batch_size=4,
                                   generator=torch.Generator().manual_seed(seed)) for seed in (7, 7, 8)]

    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])
    assert not torch.equal(runs[0]["1.weight"], runs[2]["1.weight"])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert torch.equal(inputs, digits.inputs[:20]) and torch.equal(targets, digits.targets[:20])


def test_logits_of_every_model_match_each_model_run_alone(digits) -> None:
    model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, generator=torch.Generator(), hidden=(8,))
    stacked = initial_parameters(model, 3, generator=torch.Generator().manual_seed(4))

    logits = reference_logits(model, stacked, digits.inputs[:25])

    for k in range(3):
        net = copy.deepcopy(model)
        with torch.no_grad():
            for name, parameter in net.named_parameters():
                parameter.copy_(stacked[name][k])
        assert torch.allclose(logits[k], net(digits.inputs[:25]), atol=1e-6)


def test_scaled_logit_is_the_log_odds_of_the_true_class_and_stays_exact_when_it_saturates() -> None:
    logits = torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    targets = torch.tensor([0, 4, 2, 2, 1, 3])

    probability = true_class_probabilities(logits, targets)

    assert torch.allclose(probability, torch.softmax(logits, -1)[..., torch.arange(6), targets])
    assert torch.allclose(scaled_logits(logits, targets), torch.log(probability / (1 - probability)))
    assert scaled_logits(torch.tensor([[60.0, 0.0, 0.0]]), torch.tensor([0])).item() == pytest.approx(60 - 0.6931, 1e-4)


def test_bad_arguments_are_refused_by_name() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    empty_row = torch.tensor([[True, False], [False, False]])
    with pytest.raises(ConfigError, match="rows \\[1\\]"):
        minibatch_schedule(empty_row, epochs=1, batch_size=1, generator=torch.Generator(), dtype=torch.float32)
    with pytest.raises(ConfigError, match="epochs"):
        minibatch_schedule(empty_row[:1], epochs=0, batch_size=1, generator=torch.Generator(), dtype=torch.float32)
    with pytest.raises(ConfigError, match="lr"):
        train_reference_models(model, empty_row[:1], torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), epochs=1,
                               lr=-1.0, batch_size=1, generator=torch.Generator())
    with pytest.raises(ConfigError, match="batch normalisation"):
        train_reference_models(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)), empty_row[:1],
                               torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), epochs=1, lr=0.1, batch_size=1,
                               generator=torch.Generator())
    with pytest.raises(ConfigError, match="PReLU"):
        initial_parameters(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.PReLU()), 2,
                           generator=torch.Generator())
