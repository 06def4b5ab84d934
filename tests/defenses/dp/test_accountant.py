import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import norm

import defenses.dp  # noqa: F401  # registers dp, ldp, ddp
from defenses.dp import (
    PrivacySpent,
    compute_epsilon,
    deployment_privacy_spent,
    local_privacy_spent,
    privacy_spent,
)
from leakage.aggregation import ClientSampling, Deployment
from leakage.errors import ConfigError


def _gaussian_epsilon(noise_multiplier: float, delta: float) -> float:
    """Exact epsilon of one Gaussian mechanism with sensitivity 1 (Balle & Wang 2018, Theorem 8)."""

    def delta_at(epsilon: float) -> float:
        s = noise_multiplier
        return norm.cdf(0.5 / s - epsilon * s) - math.exp(epsilon) * norm.cdf(-0.5 / s - epsilon * s) - delta

    return float(brentq(delta_at, 0.0, 100.0))


def test_poisson_epsilon_matches_published_values() -> None:
    rdp = compute_epsilon(noise_multiplier=4.0, steps=10_000, delta=1e-5, sampling_rate=0.01, client_sampling="poisson")
    pld = compute_epsilon(
        noise_multiplier=4.0, steps=10_000, delta=1e-5, sampling_rate=0.01, client_sampling="poisson", method="pld"
    )
    mnist = compute_epsilon(
        noise_multiplier=1.1, steps=14_062, delta=1e-5, population=60_000, sample_size=256, client_sampling="poisson"
    )
    print(f"reference epsilons: rdp={rdp:.4f} pld={pld:.4f} mnist_rdp={mnist:.4f}")

    assert rdp == pytest.approx(1.035, abs=5e-4)
    assert pld == pytest.approx(0.947, abs=5e-4)
    assert mnist == pytest.approx(2.597, abs=5e-4)


def test_sampling_rate_and_sizes_describe_the_same_poisson_sampling() -> None:
    by_rate = compute_epsilon(
        noise_multiplier=1.1, steps=100, delta=1e-5, sampling_rate=256 / 60_000, client_sampling="poisson"
    )
    by_sizes = compute_epsilon(
        noise_multiplier=1.1, steps=100, delta=1e-5, population=60_000, sample_size=256, client_sampling="poisson"
    )

    assert by_rate == pytest.approx(by_sizes, rel=1e-12)


def test_fixed_size_sampling_costs_more_than_poisson_at_the_same_rate() -> None:
    def spent(sampling: ClientSampling) -> PrivacySpent:
        return privacy_spent(
            noise_multiplier=1.1, steps=14_062, delta=1e-5, population=60_000, sample_size=256, client_sampling=sampling
        )

    fixed = spent("fixed")
    poisson = spent("poisson")
    print(f"fixed-size epsilon={fixed.epsilon:.4f} vs poisson {poisson.epsilon:.4f}")

    assert fixed.epsilon > poisson.epsilon
    assert fixed.neighboring_relation == "replace_one"
    assert poisson.neighboring_relation == "add_or_remove_one"


def test_everyone_every_round_is_the_composed_gaussian_mechanism() -> None:
    # T Gaussian releases with multiplier s compose to one with multiplier s / sqrt(T).
    steps, noise_multiplier = 16, 8.0
    exact = _gaussian_epsilon(noise_multiplier / math.sqrt(steps), 1e-5)

    pld = privacy_spent(
        noise_multiplier=noise_multiplier, steps=steps, delta=1e-5, sampling_rate=1.0,
        client_sampling="poisson", method="pld",
    )
    fixed = privacy_spent(
        noise_multiplier=noise_multiplier, steps=steps, delta=1e-5, population=7, sample_size=7, client_sampling="fixed"
    )
    rdp = compute_epsilon(noise_multiplier=noise_multiplier, steps=steps, delta=1e-5, sampling_rate=1.0,
                          client_sampling="poisson")

    assert pld.epsilon == pytest.approx(exact, rel=1e-3)
    assert pld.sampling_rate == 1.0 and fixed.sampling_rate == 1.0
    assert fixed.epsilon == pytest.approx(rdp)  # no sampling: the mode does not matter
    assert exact <= rdp < 1.5 * exact  # RDP is an upper bound, not far off


def test_local_accounting_uses_twice_the_clip_norm_and_no_amplification() -> None:
    local = local_privacy_spent(noise_multiplier=6.0, steps=5, delta=1e-5, method="pld")
    exact = _gaussian_epsilon(6.0 / 2 / math.sqrt(5), 1e-5)

    assert local.epsilon == pytest.approx(exact, rel=1e-3)
    assert local.neighboring_relation == "replace_one"
    assert local.sampling_rate == 1.0


def test_zero_steps_spend_nothing() -> None:
    assert compute_epsilon(noise_multiplier=1.0, steps=0, delta=1e-5, sampling_rate=0.1, client_sampling="poisson") == 0.0


def test_deployment_accounting_follows_the_simulator_sampling() -> None:
    def deployment(sampling: str) -> Deployment:
        return Deployment(
            n_clients=100, clients_per_round=10, client_sampling=sampling, rounds=5,  # type: ignore[arg-type]
            num_parameters=3, client_weights=(1.0,) * 100,
        )

    poisson = deployment_privacy_spent(deployment("poisson"), noise_multiplier=1.0, steps=5, delta=1e-5)
    fixed = deployment_privacy_spent(deployment("fixed"), noise_multiplier=1.0, steps=5, delta=1e-5)

    assert poisson.epsilon == compute_epsilon(
        noise_multiplier=1.0, steps=5, delta=1e-5, sampling_rate=0.1, client_sampling="poisson"
    )
    assert fixed.epsilon == compute_epsilon(
        noise_multiplier=1.0, steps=5, delta=1e-5, population=100, sample_size=10, client_sampling="fixed"
    )


def test_privacy_spent_serialises_to_plain_data() -> None:
    spent = privacy_spent(noise_multiplier=2.0, steps=3, delta=1e-6, sampling_rate=0.5, client_sampling="poisson")

    data = spent.to_dict()

    assert PrivacySpent(**data) == spent  # type: ignore[arg-type]
    assert data["method"] == "rdp" and data["steps"] == 3 and data["delta"] == 1e-6


@settings(max_examples=10, deadline=None)
@given(low=st.floats(0.5, 5.0), factor=st.floats(1.1, 3.0), rate=st.floats(0.001, 1.0))
def test_more_noise_means_less_epsilon(low: float, factor: float, rate: float) -> None:
    def epsilon(noise_multiplier: float) -> float:
        return compute_epsilon(
            noise_multiplier=noise_multiplier, steps=50, delta=1e-5, sampling_rate=rate, client_sampling="poisson"
        )

    assert epsilon(low) > epsilon(low * factor)


def test_more_noise_means_less_epsilon_under_fixed_size_sampling() -> None:
    def epsilon(noise_multiplier: float) -> float:
        return compute_epsilon(
            noise_multiplier=noise_multiplier, steps=50, delta=1e-5, population=1000, sample_size=20,
            client_sampling="fixed",
        )

    assert epsilon(1.0) > epsilon(1.5)


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier"),
        ({"noise_multiplier": -1.0}, "noise_multiplier"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"delta": 2.0}, "delta"),
        ({"steps": -1}, "steps"),
        ({"sampling_rate": 0.0}, "sampling_rate"),
        ({"sampling_rate": 1.5}, "sampling_rate"),
        ({"method": "moments"}, "method"),
        ({"client_sampling": "stratified"}, "client_sampling"),
    ],
)
def test_bad_inputs_name_the_parameter(changes: dict[str, object], parameter: str) -> None:
    arguments: dict[str, object] = {
        "noise_multiplier": 1.0, "steps": 10, "delta": 1e-5, "sampling_rate": 0.1, "client_sampling": "poisson",
    }
    arguments.update(changes)

    with pytest.raises(ConfigError, match=parameter):
        compute_epsilon(**arguments)  # type: ignore[arg-type]


def test_sampling_must_be_described_once_and_completely() -> None:
    base: dict[str, float] = {"noise_multiplier": 1.0, "steps": 10, "delta": 1e-5}

    with pytest.raises(ConfigError, match="population and sample_size"):
        compute_epsilon(client_sampling="fixed", sampling_rate=0.1, **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not both"):
        compute_epsilon(client_sampling="poisson", sampling_rate=0.1, population=10, sample_size=1, **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sample_size"):
        compute_epsilon(client_sampling="poisson", population=10, **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sample_size must be <= population"):
        compute_epsilon(client_sampling="fixed", population=10, sample_size=11, **base)  # type: ignore[arg-type]


def test_pld_refuses_fixed_size_sampling() -> None:
    with pytest.raises(ConfigError, match="pld.*fixed-size"):
        compute_epsilon(
            noise_multiplier=1.0, steps=10, delta=1e-5, population=100, sample_size=10,
            client_sampling="fixed", method="pld",
        )
