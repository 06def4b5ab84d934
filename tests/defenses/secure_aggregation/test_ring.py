import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from defenses.secure_aggregation import RingEncoding
from leakage.errors import ConfigError


def _sum(words: np.ndarray) -> np.ndarray:
    total = np.zeros(words.shape[1], dtype=words.dtype)
    for row in words:
        np.add(total, row, out=total)
    return total


@settings(max_examples=40, deadline=None)
@given(
    ring_bits=st.sampled_from([20, 32, 48, 64]),
    clients=st.integers(min_value=1, max_value=8),
    dim=st.integers(min_value=1, max_value=40),
    clip_range=st.floats(min_value=0.01, max_value=10.0),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_the_decoded_sum_is_the_weighted_sum_within_one_step_per_unit_weight(
    ring_bits: int, clients: int, dim: int, clip_range: float, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(clients, dim, generator=generator, dtype=torch.float64) * clip_range
    weights = torch.randint(1, 20, (clients,), generator=generator).to(torch.float64)
    encoding = RingEncoding.fitting(ring_bits=ring_bits, clip_range=clip_range, max_total_weight=20 * clients)

    words, clipped = encoding.encode(values, weights, generator)
    weighted, total_weight = encoding.decode_sum(_sum(words))

    expected = (weights[:, None] * values.clamp(-clip_range, clip_range)).sum(0)
    assert total_weight == int(weights.sum())
    assert (weighted - expected).abs().max() <= encoding.step * float(weights.sum()) + 1e-9 * clip_range
    assert clipped.tolist() == (values.abs() > clip_range).sum(1).tolist()


def test_stochastic_rounding_is_unbiased() -> None:
    encoding = RingEncoding(ring_bits=32, clip_range=1.0, levels=10)
    values = torch.full((20_000, 1), 0.234, dtype=torch.float64)

    words, _ = encoding.encode(values, torch.ones(20_000), torch.Generator().manual_seed(0))
    weighted, total = encoding.decode_sum(_sum(words))

    assert abs(float(weighted[0]) / total - 0.234) < 0.002


def test_a_ring_too_small_for_the_deployment_is_rejected_with_the_size_needed() -> None:
    with pytest.raises(ConfigError, match="ring_bits=16 is too small.*needs ring_bits >= 19"):
        RingEncoding.fitting(ring_bits=16, clip_range=1.0, max_total_weight=1000)


def test_asking_for_more_precision_than_the_ring_holds_is_rejected() -> None:
    with pytest.raises(ConfigError, match="ring_bits=32 is too small"):
        RingEncoding.fitting(ring_bits=32, clip_range=1.0, max_total_weight=200 * 500, precision_bits=20)


def test_the_most_extreme_sum_does_not_wrap() -> None:
    encoding = RingEncoding.fitting(ring_bits=24, clip_range=1.0, max_total_weight=30)
    values = torch.full((3, 4), -5.0)  # clipped to the most negative level

    words, clipped = encoding.encode(values, torch.tensor([10.0, 10.0, 10.0]), torch.Generator())
    weighted, total = encoding.decode_sum(_sum(words))

    assert torch.allclose(weighted, torch.full((4,), -30.0, dtype=torch.float64))
    assert total == 30 and clipped.tolist() == [4, 4, 4]
