import math

import pytest
import torch
from scipy.stats import chisquare

import defenses.dp  # noqa: F401  # registers dp, ldp, ddp
from defenses.dp import sample_discrete_gaussian
from leakage.errors import ConfigError


def _exact_pmf(scale: float) -> dict[int, float]:
    """P(k) of N_Z(0, scale^2), by a plain loop over a support wide enough for any float64 effect."""
    reach = int(40 * scale) + 40
    weights = {k: math.exp(-(k * k) / (2 * scale * scale)) for k in range(-reach, reach + 1)}
    total = math.fsum(weights.values())
    return {k: w / total for k, w in weights.items()}


@pytest.mark.parametrize("scale", [0.4, 1.0, 3.0, 25.0])
def test_moments_match_the_exact_discrete_gaussian(scale: float) -> None:
    pmf = _exact_pmf(scale)
    variance = math.fsum(k * k * p for k, p in pmf.items())
    fourth = math.fsum(k**4 * p for k, p in pmf.items())
    draws = 200_000

    samples = sample_discrete_gaussian(scale, (draws,), generator=torch.Generator().manual_seed(7)).double()

    mean_tolerance = 5 * math.sqrt(variance / draws)
    variance_tolerance = 5 * math.sqrt((fourth - variance**2) / draws)
    assert abs(float(samples.mean())) < mean_tolerance
    assert abs(float(samples.pow(2).mean()) - variance) < variance_tolerance


def test_small_scale_variance_is_below_the_continuous_one() -> None:
    pmf = _exact_pmf(0.4)
    exact_variance = math.fsum(k * k * p for k, p in pmf.items())

    samples = sample_discrete_gaussian(0.4, (100_000,), generator=torch.Generator().manual_seed(3)).double()

    assert exact_variance < 0.4**2
    assert float(samples.var()) == pytest.approx(exact_variance, rel=0.05)


@pytest.mark.parametrize("scale", [0.7, 2.0, 6.0])
def test_histogram_fits_the_exact_pmf(scale: float) -> None:
    pmf = _exact_pmf(scale)
    draws = 100_000
    samples = sample_discrete_gaussian(scale, (draws,), generator=torch.Generator().manual_seed(11))
    # Bins: every k whose expected count is at least 20, plus the two merged tails.
    inner = sorted(k for k, p in pmf.items() if p * draws >= 20)
    low, high = inner[0], inner[-1]
    observed = [int((samples < low).sum())] + [int((samples == k).sum()) for k in inner] + [int((samples > high).sum())]
    expected = (
        [math.fsum(p for k, p in pmf.items() if k < low)]
        + [pmf[k] for k in inner]
        + [math.fsum(p for k, p in pmf.items() if k > high)]
    )
    expected_counts = [draws * p for p in expected]
    expected_counts[0] += (draws - sum(expected_counts)) / 2  # fsum rounding, ~1e-10
    expected_counts[-1] = draws - sum(expected_counts[:-1])

    statistic, p_value = chisquare(observed, expected_counts)

    assert sum(observed) == draws
    assert p_value > 1e-3, f"chi-square {statistic:.1f} on {len(observed) - 1} dof"


def test_samples_are_integers_of_the_requested_shape() -> None:
    samples = sample_discrete_gaussian(2.5, (3, 4), generator=torch.Generator().manual_seed(0))

    assert samples.shape == (3, 4)
    assert samples.dtype == torch.int64


def test_same_generator_state_gives_the_same_samples_and_global_rng_is_untouched() -> None:
    global_state = torch.random.get_rng_state()

    first = sample_discrete_gaussian(5.0, (1000,), generator=torch.Generator().manual_seed(42))
    second = sample_discrete_gaussian(5.0, (1000,), generator=torch.Generator().manual_seed(42))
    other = sample_discrete_gaussian(5.0, (1000,), generator=torch.Generator().manual_seed(43))

    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert torch.equal(torch.random.get_rng_state(), global_state)


def test_very_large_scales_round_a_continuous_gaussian() -> None:
    scale = 5e6

    samples = sample_discrete_gaussian(scale, (20_000,), generator=torch.Generator().manual_seed(1))

    assert samples.dtype == torch.int64
    assert float(samples.double().std()) == pytest.approx(scale, rel=0.03)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scale_is_rejected(scale: float) -> None:
    with pytest.raises(ConfigError, match="scale"):
        sample_discrete_gaussian(scale, (2,), generator=torch.Generator())
