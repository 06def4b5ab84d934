"""The imprint (binning) attack: exact bins, real samples, a full secure-aggregation round."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from attacks import ATTACKS, Knowledge, create_attack
from attacks.imprint import (
    ImprintAttack,
    ImprintBlock,
    assign_bins,
    imprint_cutoffs,
    match_samples,
    measurement_direction,
    recover_from_imprint,
)
from leakage import create_model, simulate
from leakage.data import Dataset
from leakage.errors import ConfigError, ThreatModelError


def _imprint_model(digits: Dataset, num_bins: int, seed: int) -> tuple[nn.Sequential, ImprintBlock]:
    generator = torch.Generator().manual_seed(seed)
    auxiliary = digits.inputs[torch.randperm(len(digits), generator=generator)[:500]]
    block = ImprintBlock.from_auxiliary(auxiliary, num_bins, measurement="random", generator=generator)
    mlp = create_model("mlp", input_shape=digits.input_shape, num_classes=10, generator=generator)
    return nn.Sequential(block, mlp), block


def _first_layer_gradient(model: nn.Sequential, block: ImprintBlock, inputs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    loss = nn.functional.cross_entropy(model(inputs), labels)
    weight, bias = torch.autograd.grad(loss, [block.first.weight, block.first.bias])
    return weight, bias



def test_a_bin_holding_exactly_one_sample_gives_it_to_float_precision(digits: Dataset) -> None:
    model, block = _imprint_model(digits, 256, seed=0)
    model = model.double()
    inputs, labels = digits.inputs[:40].double(), digits.targets[:40]

    weight, bias = _first_layer_gradient(model, block, inputs, labels)
    samples, bins = recover_from_imprint(weight, bias)

    truth_bins = assign_bins(block.measure(inputs), block.cutoffs)
    counts = torch.bincount(truth_bins[truth_bins >= 0], minlength=block.num_bins)
    lone = [s for s in range(40) if truth_bins[s] >= 0 and counts[truth_bins[s]] == 1]
    assert len(lone) >= 30
    for sample in lone:
        (row,) = torch.nonzero(bins == truth_bins[sample]).reshape(-1).tolist()
        assert torch.allclose(samples[row], inputs[sample].reshape(-1), rtol=0, atol=1e-9)


def test_recovered_samples_are_the_real_inputs_not_the_batch_mean(digits: Dataset) -> None:
    model, block = _imprint_model(digits, 1024, seed=1)
    inputs, labels = digits.inputs[100:108], digits.targets[100:108]

    weight, bias = _first_layer_gradient(model, block, inputs, labels)
    samples, _ = recover_from_imprint(weight, bias)
    match = match_samples(digits.denormalize(samples.reshape(-1, 1, 8, 8)), digits.denormalize(inputs),
                          data_range=1.0)

    assert match.fraction_recovered(30.0) >= 7 / 8
    batch_mean = digits.denormalize(inputs).mean(dim=0, keepdim=True)
    mean_match = match_samples(batch_mean, digits.denormalize(inputs), data_range=1.0)
    assert mean_match.fraction_recovered(30.0) == 0.0


def test_an_update_gives_the_same_samples_as_the_gradient(digits: Dataset) -> None:
    model, block = _imprint_model(digits, 512, seed=2)
    weight, bias = _first_layer_gradient(model.double(), block, digits.inputs[:16].double(), digits.targets[:16])

    from_gradient, bins = recover_from_imprint(weight, bias)
    from_update, update_bins = recover_from_imprint(-0.1 * weight, -0.1 * bias)

    assert torch.equal(bins, update_bins)
    assert torch.allclose(from_gradient, from_update, rtol=1e-9, atol=1e-9)


def test_imprint_recovers_most_samples_of_ten_secure_aggregation_clients(digits: Dataset) -> None:
    # The acceptance oracle: N = 10 clients of 8 digits, k = 1024 bins, secure aggregation.
    model, _ = _imprint_model(digits, 1024, seed=0)
    transcript = simulate(dataset=digits, model=model, n_clients=10, rounds=1, algorithm="fedsgd", batch_size=8,
                          scheme="secagg", seed=0, partition_options={"samples_per_client": 8})
    server = transcript.views_of("server")
    assert not any(key.startswith("update:") for key in server[0].received)  # only the aggregate is in the clear

    found = ImprintAttack().run(server, Knowledge.from_dataset(digits, model, lr=0.1))
    clients = transcript.truth.rounds[0].client_ids
    indices = torch.cat([transcript.truth.partition[client] for client in clients])
    match = match_samples(found.raw_inputs, digits.denormalize(digits.inputs[indices]), data_range=1.0)

    assert indices.numel() == 80
    assert match.fraction_recovered(30.0) >= 0.8
    matched = match.psnr >= 30.0
    assert bool((match.psnr[matched] > 30.0).all()) and int(matched.sum()) >= 64


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=2, max_size=60),
    probes=st.lists(st.floats(-12, 12, allow_nan=False, width=32), min_size=1, max_size=20),
    num_bins=st.integers(1, 40),
)
@example(values=[0.0, -1.401298464324817e-45], probes=[0.0], num_bins=2)  # a quantile no float32 bias can hold
def test_cutoffs_increase_and_a_sample_activates_exactly_the_units_below_it(
    values: list[float], probes: list[float], num_bins: int
) -> None:
    edges = imprint_cutoffs(torch.tensor(values), num_bins)
    cutoffs = edges[:-1]
    measurements = torch.tensor(probes, dtype=torch.float64)

    bins = assign_bins(measurements, cutoffs)
    block = ImprintBlock((1,), torch.ones(1, dtype=torch.float64), cutoffs, gain=1.0).double()
    active = block.relu(block.first(measurements[:, None])) > 0

    assert edges.numel() == num_bins + 1 and bool((edges[1:] >= edges[:-1]).all())
    assert edges[0] == min(values) and edges[-1] == max(values)
    for row, bin_index in enumerate(bins.tolist()):
        assert active[row].tolist() == [unit <= bin_index for unit in range(num_bins)]


def test_the_block_keeps_the_input_shape_and_passes_gradient_to_its_first_layer(digits: Dataset) -> None:
    model, block = _imprint_model(digits, 64, seed=3)
    assert block(digits.inputs[:4]).shape == digits.inputs[:4].shape
    weight, bias = _first_layer_gradient(model, block, digits.inputs[:4], digits.targets[:4])
    assert weight.abs().sum() > 0 and bias.abs().sum() > 0


def test_it_is_registered_as_a_server_attack_on_records() -> None:
    attack = create_attack("imprint", min_relative_bias=1e-3)
    assert isinstance(attack, ImprintAttack) and ATTACKS.get("imprint").produces == "records"
    assert ImprintAttack.runs_as("server") and not ImprintAttack.runs_as("client")


def test_it_needs_a_model_with_an_imprint_block(digits: Dataset) -> None:
    transcript = simulate(n_clients=2, rounds=1, algorithm="fedsgd", batch_size=2)
    knowledge = Knowledge.from_dataset(digits, create_model("mlp", input_shape=(1, 8, 8), num_classes=10,
                                                            generator=torch.Generator()))
    with pytest.raises(ThreatModelError, match="ImprintBlock"):
        ImprintAttack().run(transcript.views_of("server"), knowledge)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ImprintAttack(min_relative_bias=1.0), r"^min_relative_bias must be .*got 1\.0$"),
        (lambda: measurement_direction(4, "median"), r"^measurement must be one of brightness, random, got 'median'$"),
        (lambda: measurement_direction(4, "random"), r"^measurement 'random' needs a generator, got None$"),
        (lambda: imprint_cutoffs(torch.tensor([1.0, 2.0]), 0), r"^num_bins must be an integer >= 1, got 0$"),
        (lambda: ImprintBlock((1, 2, 2), torch.ones(4), torch.tensor([1.0, 0.0])), r"^cutoffs must be non-decr"),
        (lambda: ImprintBlock((1, 2, 2), torch.ones(4), torch.zeros(2), gain=0.0), r"^gain must be a finite number"),
        (lambda: recover_from_imprint(torch.zeros(3, 2), torch.zeros(2)), r"^weight_grad must be \[k, D\]"),
    ],
)
def test_bad_arguments_are_refused_with_a_one_line_message(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        call()  # type: ignore[operator]
    assert "\n" not in str(error.value)


def test_matching_pairs_each_estimate_with_one_original_at_most() -> None:
    original = torch.rand(3, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    estimates = torch.cat([original[:1], original[:1], original[:1]])

    match = match_samples(estimates, original, data_range=1.0)

    assert math.isinf(float(match.psnr[0])) and match.fraction_recovered(30.0) <= 2 / 3
