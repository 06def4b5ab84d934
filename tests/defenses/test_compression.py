import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import defenses.compression  # noqa: F401  # registers "compression"
from defenses.compression import (
    Compression,
    kept_coordinates,
    stochastic_quantize,
    topk_sparsify,
)
from leakage import simulate
from leakage.aggregation import MECHANISMS, RoundContext, create_scheme
from leakage.aggregation.plain import PlainAggregation
from leakage.errors import ConfigError
from leakage.views import SERVER


def _context(updates: torch.Tensor, seed: int = 0) -> RoundContext:
    client_ids = tuple(range(len(updates)))
    return RoundContext(
        round_index=0,
        is_final_round=False,
        params_before=torch.zeros(updates.shape[1]),
        client_ids=client_ids,
        updates=updates,
        weights=torch.ones(len(updates), dtype=torch.float64),
        dropped=frozenset(),
        server_lr=1.0,
        public={},
        client_data={c: torch.tensor([c]) for c in client_ids},
        generator=torch.Generator().manual_seed(seed),
    )


def _random_updates(clients: int, size: int, seed: int) -> torch.Tensor:
    return torch.randn(clients, size, generator=torch.Generator().manual_seed(seed))


def test_compression_is_registered_as_a_mechanism() -> None:
    assert MECHANISMS.get("compression") is Compression
    assert create_scheme("compression", keep=0.5).name == "compression,plain"


def test_keep_one_is_the_identity_exactly() -> None:
    updates = _random_updates(5, 37, seed=1)
    original = updates.clone()

    output = Compression(keep=1.0).apply(_context(updates), PlainAggregation())

    assert torch.equal(output.updates, updates)
    assert torch.equal(updates, original)
    assert output.metrics["compression_relative_error"] == 0.0


@settings(max_examples=25, deadline=None)
@given(clients=st.integers(1, 6), size=st.integers(1, 40), keep=st.floats(0.01, 1.0), seed=st.integers(0, 10_000))
def test_topk_keeps_exactly_the_k_largest_magnitudes_of_each_client(clients: int, size: int, keep: float, seed: int) -> None:
    updates = _random_updates(clients, size, seed)
    k = kept_coordinates(size, keep)

    sparse = topk_sparsify(updates, keep)

    for row in range(clients):  # slow, obviously correct reference
        order = sorted(range(size), key=lambda j: -abs(float(updates[row, j])))
        kept = set(order[:k])
        for j in range(size):
            expected = float(updates[row, j]) if j in kept else 0.0
            assert float(sparse[row, j]) == expected


def test_topk_counts_round_to_the_nearest_coordinate_and_keep_at_least_one() -> None:
    assert kept_coordinates(650, 0.1) == 65
    assert kept_coordinates(10, 0.01) == 1
    assert kept_coordinates(10, 1.0) == 10


@settings(max_examples=40, deadline=None)
@given(
    clients=st.integers(1, 4),
    size=st.integers(1, 30),
    bits=st.integers(1, 16),
    magnitude=st.floats(1e-6, 1e6),
    seed=st.integers(0, 10_000),
)
def test_quantize_then_dequantize_stays_within_one_step(
    clients: int, size: int, bits: int, magnitude: float, seed: int
) -> None:
    updates = _random_updates(clients, size, seed) * magnitude

    quantized = stochastic_quantize(updates, bits, generator=torch.Generator().manual_seed(seed))
    error = (quantized.dequantize() - updates).abs()

    step = quantized.step.unsqueeze(-1)
    assert bool((error <= step * (1 + 1e-5)).all())
    assert int(quantized.codes.abs().max()) <= max(2 ** (bits - 1) - 1, 1)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_stochastic_quantization_is_unbiased(bits: int) -> None:
    vector = torch.tensor([0.9, -0.35, 0.05, 0.0, -1.0, 0.6])
    draws = 20_000
    updates = vector.repeat(draws, 1)  # every row the same client vector: one vectorised draw

    quantized = stochastic_quantize(updates, bits, generator=torch.Generator().manual_seed(3))
    mean = quantized.dequantize().double().mean(dim=0)

    # the standard error of one coordinate's mean is at most step / (2 sqrt(draws))
    step = float(quantized.step[0])
    torch.testing.assert_close(mean, vector.double(), rtol=0.0, atol=5 * step / (2 * math.sqrt(draws)))


def test_quantize_sends_zero_updates_as_zeros_and_reports_wire_bytes() -> None:
    updates = torch.cat([torch.zeros(1, 100), _random_updates(2, 100, seed=4)])

    output = Compression(method="quantize", bits=4).apply(_context(updates), PlainAggregation())

    assert torch.equal(output.updates[0], torch.zeros(100))
    assert output.metrics["compression_wire_bytes"] == 100 * 4 / 8 + 4
    assert output.metrics["compression_ratio"] == 400 / 54
    assert 0.0 < output.metrics["compression_relative_error"] < 1.0
    assert output.public == {"compression_method": "quantize", "compression_bits": 4}


def test_topk_reports_indices_and_values_on_the_wire() -> None:
    output = Compression(keep=0.1).apply(_context(_random_updates(3, 650, seed=5)), PlainAggregation())

    assert output.metrics["compression_wire_bytes"] == 65 * (4 + 4)
    assert output.public == {"compression_method": "topk", "compression_keep": 0.1}


@pytest.mark.parametrize("options", [{"keep": 0.2}, {"method": "quantize", "bits": 3}, {"method": "quantize", "bits": 1}])
def test_compression_is_deterministic_and_does_not_mutate_its_input(options: dict[str, object]) -> None:
    updates = _random_updates(4, 50, seed=6)
    original = updates.clone()
    mechanism = Compression(**options)

    first = mechanism.apply(_context(updates, seed=9), PlainAggregation())
    second = mechanism.apply(_context(updates, seed=9), PlainAggregation())

    assert torch.equal(first.updates, second.updates)
    assert first.metrics == second.metrics
    assert torch.equal(updates, original)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "zip"}, "method must be one of topk, quantize, got 'zip'"),
        ({"keep": 0.0}, "keep must be a finite number > 0, got 0.0"),
        ({"keep": 1.5}, r"keep must be a fraction in \(0, 1\], got 1.5"),
        ({"keep": "half"}, "keep must be a finite number > 0"),
        ({"method": "quantize", "bits": 0}, "bits must be an integer >= 1, got 0"),
        ({"method": "quantize", "bits": 17}, r"bits must be an integer in \[1, 16\], got 17"),
        ({"method": "quantize", "bits": 2.5}, "bits must be an integer"),
        ({"bits": 4}, "bits applies only to method='quantize'"),
        ({"method": "quantize", "keep": 0.5}, "keep applies only to method='topk'"),
    ],
)
def test_compression_rejects_bad_options_by_name(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Compression(**options)


def test_unknown_options_are_rejected_through_the_registry() -> None:
    with pytest.raises(ConfigError, match="unknown option 'ratio'"):
        create_scheme("compression", ratio=0.5)


def _check_compressed_views(transcript, keep: float) -> None:
    for record, truth in zip(transcript.rounds, transcript.truth.rounds):
        compressed = topk_sparsify(truth.updates, keep)
        k = kept_coordinates(truth.updates.shape[1], keep)
        assert record.public["compression_method"] == "topk"
        assert record.metrics["compression_wire_bytes"] == k * 8
        for client in record.survivors:
            row = truth.client_ids.index(client)
            upload = record.views[SERVER].received[f"update:client:{client}"]
            assert torch.equal(upload, compressed[row])
            assert int((upload != 0).sum()) <= k
            own = record.views[f"client:{client}"].own
            assert torch.equal(own["update"], truth.updates[row])
            assert torch.equal(own["sent"], compressed[row])


def test_compression_in_front_of_plain_end_to_end() -> None:
    transcript = simulate(
        scheme=["compression", "plain"],
        scheme_options={"compression": {"keep": 0.1}},
        n_clients=4,
        rounds=2,
        model="logreg",
    )

    assert transcript.settings["scheme"] == "compression,plain"
    _check_compressed_views(transcript, keep=0.1)


def test_a_lone_compression_name_runs_in_front_of_plain() -> None:
    transcript = simulate(scheme="compression", scheme_options={"keep": 0.1}, n_clients=4, rounds=2, model="logreg")

    assert transcript.settings["scheme"] == "compression,plain"
    _check_compressed_views(transcript, keep=0.1)


def test_quantized_uploads_end_to_end_are_reproducible() -> None:
    options = {"scheme": "compression", "scheme_options": {"method": "quantize", "bits": 2}}

    first = simulate(n_clients=3, rounds=2, model="logreg", seed=5, **options)
    second = simulate(n_clients=3, rounds=2, model="logreg", seed=5, **options)

    assert torch.equal(first.final_params, second.final_params)
    upload = first.rounds[0].views[SERVER].received["update:client:0"]
    assert len(torch.unique(upload.abs())) <= 2  # levels 0 and M with s = 1
