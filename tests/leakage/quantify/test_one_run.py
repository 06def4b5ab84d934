"""One-run auditing: the issue's figures, an independent implementation's values, the GDP
conversion, Andrew et al.'s estimate on a Gaussian mechanism, and the guess policies."""

import json
import math
from collections.abc import Callable

import dp_accounting
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from leakage.errors import ConfigError
from leakage.quantify import (
    GuessRule,
    OneRunMethod,
    andrew_estimate,
    audit_one_run_bonferroni,
    audit_one_run_fixed,
    audit_one_run_split,
    epsilon_to_gaussian_mu,
    gaussian_dp_delta,
    gaussian_dp_to_epsilon,
    one_run_epsilon,
    one_run_epsilon_gdp,
    one_run_gaussian_mu,
    one_run_p_value,
)

# --- Steinke et al.'s bound --------------------------------------------------------------------


@pytest.mark.parametrize(("m", "expected"), [(64, 3.04), (165, 4.00), (384, 4.84), (1000, 5.78)])
def test_every_guess_right_proves_the_issues_figures(m: int, expected: float) -> None:
    assert round(one_run_epsilon(m, m, m, delta=1e-5, confidence=0.95), 2) == expected


def test_the_papers_worked_examples_with_abstentions() -> None:
    # Steinke et al.'s examples as quoted by public test suites: 75 of 100 guesses right
    assert one_run_epsilon(100, 100, 75, delta=1e-4) == pytest.approx(0.699, abs=5e-4)
    assert one_run_epsilon(1000, 100, 75, delta=1e-4) == pytest.approx(0.673, abs=5e-4)


def test_without_delta_every_guess_right_is_the_closed_form() -> None:
    # P[all r right] = q^r < 1 - confidence  <=>  epsilon < logit((1 - confidence)^(1/r))
    for guesses in (10, 64, 500):
        expected = special.logit(0.05 ** (1 / guesses))
        assert one_run_epsilon(1000, guesses, guesses, delta=0.0) == pytest.approx(expected, abs=1e-9)


def test_the_p_value_is_the_theorem_written_out_term_by_term() -> None:
    m, guesses, correct, epsilon, delta = 300, 120, 90, 0.7, 1e-3
    q = math.exp(epsilon) / (1 + math.exp(epsilon))

    def tail(v: int) -> float:
        return sum(math.comb(guesses, k) * q**k * (1 - q) ** (guesses - k) for k in range(max(v, 0), guesses + 1))

    slope = max((tail(correct - i) - tail(correct)) / i for i in range(1, correct + 1))

    assert one_run_p_value(m, guesses, correct, epsilon=epsilon, delta=delta) == pytest.approx(
        tail(correct) + 2 * m * delta * slope, rel=1e-9
    )


def test_the_bound_is_where_the_p_value_crosses_the_significance() -> None:
    bound = one_run_epsilon(500, 200, 170, delta=1e-5, confidence=0.9)

    assert one_run_p_value(500, 200, 170, epsilon=bound, delta=1e-5) == pytest.approx(0.1, abs=1e-9)
    assert one_run_p_value(500, 200, 170, epsilon=bound - 1e-3, delta=1e-5) < 0.1
    assert one_run_epsilon(500, 200, 100, delta=1e-5) == 0.0  # a coin flip refutes nothing


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 300),
    guessed=st.floats(0, 1),
    right=st.floats(0, 1),
)
def test_the_bound_grows_with_right_guesses_and_shrinks_with_delta_and_confidence(
    m: int, guessed: float, right: float
) -> None:
    guesses = round(guessed * m)
    correct = round(right * guesses)
    bound = one_run_epsilon(m, guesses, correct, delta=1e-5)

    if correct < guesses:
        assert one_run_epsilon(m, guesses, correct + 1, delta=1e-5) >= bound - 1e-9
    assert one_run_epsilon(m, guesses, correct, delta=0.0) >= bound - 1e-9
    assert one_run_epsilon(m, guesses, correct, delta=1e-5, confidence=0.99) <= bound + 1e-9


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("m", [50, 400])
def test_randomised_response_is_refuted_at_its_own_epsilon_at_most_five_percent_of_the_time(
    m: int, epsilon: float
) -> None:
    # every canary guessed by an epsilon-DP randomised response of its bit: right with probability q
    q = special.expit(epsilon)
    rights = np.arange(m + 1)
    refuted = [one_run_p_value(m, m, int(v), epsilon=epsilon, delta=1e-5) < 0.05 for v in rights]

    assert stats.binom.pmf(rights, m, q)[refuted].sum() <= 0.05


def test_on_randomised_response_the_bound_stays_near_but_mostly_below_the_true_epsilon() -> None:
    epsilon, m = 2.0, 400
    bounds = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        inserted = rng.random(m) < 0.5
        truthful = rng.random(m) < special.expit(epsilon)
        guessed_in = np.where(truthful, inserted, ~inserted)
        bounds.append(one_run_epsilon(m, m, int((guessed_in == inserted).sum()), delta=1e-5))

    # the test is exact for randomised response, so about 1 seed in 20 may exceed it
    assert sum(b > epsilon for b in bounds) <= 3
    assert 1.2 < min(bounds) and np.mean(bounds) < epsilon


# --- an independent implementation's published values -------------------------------------------

# google-deepmind/jax_privacy, jax_privacy/auditing_test.py, test_epsilon_one_run_close: 10,000 in- and
# 10,000 out-canaries with deterministic N(shift, 1) and N(0, 1) scores, one-sided guesses "score >= t"
# over the thresholds of the ROC's upper hull with a Bonferroni correction over them, 95%, delta 1e-6
JAX_PRIVACY_ONE_RUN = [(1, 1.13346, 2.164749), (2, 2.311945, 4.7218075), (4, 4.395568, 9.133752)]


def _deterministic_normal(mean: float, count: int) -> np.ndarray:
    return np.asarray(stats.norm.ppf((np.arange(count) + 0.5) / count) + mean)


def _upper_hull_rules(inside: np.ndarray, outside: np.ndarray) -> list[GuessRule]:
    """One rule "guess in above t" per vertex of the upper hull of (false negatives, true negatives) over t."""
    thresholds = np.concatenate([np.union1d(inside, outside), [np.inf]])
    false_neg = np.searchsorted(np.sort(inside), thresholds)
    true_neg = np.searchsorted(np.sort(outside), thresholds)
    hull: list[int] = []
    for i in range(len(thresholds)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            turn = (false_neg[b] - false_neg[a]) * (true_neg[i] - true_neg[a])
            turn -= (true_neg[b] - true_neg[a]) * (false_neg[i] - false_neg[a])
            if turn < 0:
                break
            hull.pop()  # b lies on or under the chord from a to i
        hull.append(i)
    return [GuessRule(int(len(inside) - false_neg[i] + len(outside) - true_neg[i])) for i in hull]


@pytest.mark.parametrize(("shift", "steinke", "gdp"), JAX_PRIVACY_ONE_RUN)
def test_the_bounds_reproduce_jax_privacys_test_values(shift: float, steinke: float, gdp: float) -> None:
    inside, outside = _deterministic_normal(shift, 10_000), _deterministic_normal(0.0, 10_000)
    scores = np.concatenate([inside, outside])
    inserted = np.arange(20_000) < 10_000
    rules = _upper_hull_rules(inside, outside)

    plain = audit_one_run_bonferroni(scores, inserted, rules, delta=1e-6, confidence=0.95)
    gaussian = audit_one_run_bonferroni(scores, inserted, rules, delta=1e-6, confidence=0.95, method="gdp")

    assert plain.epsilon_lower_bound == pytest.approx(steinke, rel=1e-5)
    assert gaussian.epsilon_lower_bound == pytest.approx(gdp, rel=1e-5)


# --- the Gaussian (f-DP) variant ---------------------------------------------------------------


@pytest.mark.parametrize("m", [64, 165, 384, 1000])
def test_the_gaussian_variant_proves_about_twice_as_much_from_the_same_guesses(m: int) -> None:
    plain = one_run_epsilon(m, m, m, delta=1e-5)
    gaussian = one_run_epsilon_gdp(m, m, m, delta=1e-5)

    assert 1.8 < gaussian / plain < 2.6
    assert gaussian == pytest.approx(gaussian_dp_to_epsilon(one_run_gaussian_mu(m, m, m), 1e-5), rel=1e-12)


def test_the_gaussian_variant_refutes_nothing_from_a_coin_flip_and_grows_with_right_guesses() -> None:
    assert one_run_gaussian_mu(1000, 200, 100) == 0.0
    mus = [one_run_gaussian_mu(1000, 200, right) for right in (120, 150, 180, 200)]
    assert all(a < b for a, b in zip(mus, mus[1:], strict=False))


def test_on_a_gaussian_mechanism_neither_bound_exceeds_its_epsilon_in_twenty_seeds() -> None:
    mu, m = 2.0, 1000  # scores N(mu * inserted, 1): mu-GDP per canary
    truth = gaussian_dp_to_epsilon(mu, 1e-5)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        inserted = rng.random(m) < 0.5
        scores = rng.normal(mu * inserted, 1.0)
        methods: tuple[OneRunMethod, ...] = ("steinke", "gdp")
        for method in methods:
            audit = audit_one_run_fixed(scores, inserted, GuessRule(100, 100), delta=1e-5, method=method)
            assert 0.0 < audit.epsilon_lower_bound < truth
        assert audit.mu_lower_bound is not None and audit.mu_lower_bound < mu


# --- the GDP conversion ----------------------------------------------------------------------


@pytest.mark.parametrize(("mu", "epsilon"), [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (2.0, 3.0), (4.0, 8.0)])
def test_the_gdp_delta_is_dong_roth_su_formula(mu: float, epsilon: float) -> None:
    expected = stats.norm.cdf(-epsilon / mu + mu / 2) - math.exp(epsilon) * stats.norm.cdf(-epsilon / mu - mu / 2)

    assert gaussian_dp_delta(mu, epsilon) == pytest.approx(expected, rel=1e-12)


def test_at_epsilon_zero_the_gdp_delta_is_the_total_variation() -> None:
    assert gaussian_dp_delta(1.0, 0.0) == pytest.approx(2 * stats.norm.cdf(0.5) - 1, rel=1e-12)
    assert epsilon_to_gaussian_mu(0.0, 2 * stats.norm.cdf(0.5) - 1) == pytest.approx(1.0, rel=1e-12)
    assert gaussian_dp_to_epsilon(1.0, 0.5) == 0.0  # delta above 2 Phi(1/2) - 1: no epsilon needed


def test_the_conversion_reproduces_andrew_et_als_test_value() -> None:
    # google-research/federated, one_shot_epe/empirical_privacy_estimation_test.py,
    # test_closed_form_null_gaussian_alt_regression (high_dim): N(0, 1/d) against N(1/sqrt d, 1/d), delta 1e-2
    assert gaussian_dp_to_epsilon(1.0, 1e-2) == pytest.approx(2.317789, abs=1e-6)


@pytest.mark.parametrize("mu", [0.05, 0.3, 1.0, 2.0, 6.0])
@pytest.mark.parametrize("delta", [1e-2, 1e-5, 1e-10])
def test_the_conversion_agrees_with_dp_accountings_gaussian_mechanism(mu: float, delta: float) -> None:
    # the Gaussian mechanism with sensitivity 1 and noise sigma is 1/sigma-GDP
    assert gaussian_dp_to_epsilon(mu, delta) == pytest.approx(
        dp_accounting.get_epsilon_gaussian(1 / mu, delta), abs=1e-8
    )


@settings(max_examples=60, deadline=None)
@given(mu=st.floats(0.02, 10.0), delta=st.floats(1e-12, 0.3))
def test_epsilon_and_mu_convert_back_and_forth(mu: float, delta: float) -> None:
    epsilon = gaussian_dp_to_epsilon(mu, delta)

    if epsilon > 0:
        assert epsilon_to_gaussian_mu(epsilon, delta) == pytest.approx(mu, rel=1e-8)
        assert gaussian_dp_delta(mu, epsilon) == pytest.approx(delta, rel=1e-8)


@settings(max_examples=60, deadline=None)
@given(mu=st.floats(0.02, 10.0), grow=st.floats(1.01, 3.0), delta=st.floats(1e-12, 0.1))
def test_epsilon_grows_with_mu_and_falls_with_delta(mu: float, grow: float, delta: float) -> None:
    epsilon = gaussian_dp_to_epsilon(mu, delta)

    assert gaussian_dp_to_epsilon(mu * grow, delta) >= epsilon
    assert gaussian_dp_to_epsilon(mu, min(delta * grow, 0.99)) <= epsilon
    assert epsilon_to_gaussian_mu(epsilon * grow + 0.01, delta) > epsilon_to_gaussian_mu(epsilon, delta)
    assert epsilon_to_gaussian_mu(epsilon, min(delta * grow, 0.99)) > epsilon_to_gaussian_mu(epsilon, delta)


# --- Andrew et al.'s estimate -----------------------------------------------------------------


def _fitted_exactly(mean: float, std: float) -> np.ndarray:
    """Three values whose mean and sample standard deviation are exactly ``mean`` and ``std``."""
    return np.array([mean - std, mean, mean + std])


def test_with_equal_spreads_the_estimate_is_the_gdp_conversion() -> None:
    estimate = andrew_estimate(_fitted_exactly(0.3, 0.2), _fitted_exactly(0.1, 0.2), delta=1e-5)

    assert estimate.epsilon_estimate == pytest.approx(gaussian_dp_to_epsilon(1.0, 1e-5), rel=1e-9)
    assert (estimate.null_source, estimate.canaries) == ("unobserved_canaries", 3)


@pytest.mark.parametrize(("observed_std", "delta"), [(1.3, 1e-5), (0.8, 1e-5), (1.05, 1e-2)])
def test_with_unequal_spreads_the_estimate_solves_the_hockey_stick_integral(observed_std: float, delta: float) -> None:
    estimate = andrew_estimate(_fitted_exactly(1.0, observed_std), _fitted_exactly(0.0, 1.0), delta=delta)
    epsilon = estimate.epsilon_estimate

    def hockey_stick(mean_p: float, std_p: float, mean_q: float, std_q: float) -> float:
        def excess(y: float) -> float:
            return max(float(stats.norm.pdf(y, mean_p, std_p) - math.exp(epsilon) * stats.norm.pdf(y, mean_q, std_q)), 0.0)
        return float(integrate.quad(excess, -40, 40, points=[-10, 0, 1, 10], limit=400, epsabs=1e-14)[0])

    largest = max(hockey_stick(1.0, observed_std, 0.0, 1.0), hockey_stick(0.0, 1.0, 1.0, observed_std))
    assert largest == pytest.approx(delta, rel=1e-5)


def _gaussian_mechanism_cosines(
    sigma: float, canaries: int, dimension: int, generator: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of canary directions with one release ``sum of inserted directions + N(0, sigma^2 I)``.

    The canaries are random orthonormal directions: a random rotation of the first
    ``canaries`` basis vectors. Cosines do not change under the rotation, so the basis
    vectors stand in for it. (Independent random directions overlap by ~1/sqrt(d), which
    adds ~inserted/d to the noise variance: negligible in a model's dimension, but here it
    would take billions of draws to make negligible.)
    """
    inserted = torch.rand(canaries, generator=generator) < 0.5
    release = sigma * torch.randn(dimension, generator=generator, dtype=torch.float64)
    release[:canaries] += inserted.double()  # each inserted direction has norm 1: sensitivity 1
    return (release[:canaries] / release.norm()).numpy(), inserted.numpy()


@pytest.mark.parametrize("sigma", [1.0, 1.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_estimate_of_a_gaussian_mechanism_is_within_0_6_of_its_exact_epsilon(sigma: float, seed: int) -> None:
    dimension = 2**22
    exact = gaussian_dp_to_epsilon(1 / sigma, 1e-5)  # sensitivity 1, noise sigma: 1/sigma-GDP
    cosines, inserted = _gaussian_mechanism_cosines(sigma, 40_000, dimension, torch.Generator().manual_seed(seed))

    from_dimension = andrew_estimate(cosines[inserted], dimension, delta=1e-5)
    from_unobserved = andrew_estimate(cosines[inserted], cosines[~inserted], delta=1e-5)

    assert 2.0 < exact < 6.0
    assert abs(from_dimension.epsilon_estimate - exact) < 0.6
    assert abs(from_unobserved.epsilon_estimate - exact) < 0.6


def test_the_estimate_says_it_is_an_estimate_with_delta_beside_it() -> None:
    estimate = andrew_estimate(_fitted_exactly(0.03, 0.01), 10_000, delta=1e-5)

    record = json.loads(json.dumps(estimate.to_dict()))
    assert record["kind"] == "estimate" and record["delta"] == 1e-5 and "epsilon_lower_bound" not in record
    assert record["null_std"] == pytest.approx(0.01) and record["null_source"] == "dimension"
    assert "estimate, not a bound" in estimate.summary() and "at delta = 1e-05" in estimate.summary()


# --- guess policies ----------------------------------------------------------------------------


def test_a_fixed_rule_guesses_the_top_in_and_the_bottom_out() -> None:
    scores = [0.9, 0.1, 0.8, 0.2, 0.5, 0.5]
    inserted = [True, False, False, True, True, False]

    audit = audit_one_run_fixed(scores, inserted, GuessRule(top_k=3, bottom_k=2), delta=1e-5)

    # in: 0.9 (right), 0.8 (wrong), the first 0.5 by index (right); out: 0.1 (right), 0.2 (wrong)
    assert (audit.m, audit.guesses, audit.correct, audit.rules_tried) == (6, 5, 3, 1)
    assert audit.epsilon_lower_bound == one_run_epsilon(6, 5, 3, delta=1e-5)


def test_without_noise_four_hundred_random_direction_canaries_prove_at_least_4() -> None:
    generator = torch.Generator().manual_seed(7)
    directions = torch.randn(400, 16_384, generator=generator)
    directions /= directions.norm(dim=1, keepdim=True)
    inserted = torch.rand(400, generator=generator) < 0.5
    release = directions[inserted].sum(0)  # no noise: not private at all
    cosines = (directions @ release / release.norm()).numpy()

    audit = audit_one_run_fixed(cosines, inserted.numpy(), GuessRule(150, 150), delta=1e-5)

    assert audit.correct == audit.guesses == 300
    assert audit.epsilon_lower_bound >= 4.0


def test_bonferroni_is_the_best_rule_tested_at_the_corrected_confidence() -> None:
    rng = np.random.default_rng(3)
    inserted = rng.random(300) < 0.5
    scores = rng.normal(1.5 * inserted, 1.0)
    rules = [GuessRule(10), GuessRule(30, 30), GuessRule(60), GuessRule(100, 100), GuessRule(0, 40)]
    ranked = np.argsort(-scores, kind="stable")

    methods: list[tuple[OneRunMethod, Callable[..., float]]] = [("steinke", one_run_epsilon), ("gdp", one_run_epsilon_gdp)]
    for method, bound in methods:
        audit = audit_one_run_bonferroni(scores, inserted, rules, delta=1e-5, confidence=0.9, method=method)

        expected = []
        for rule in rules:  # the slow, obvious way
            top, bottom = ranked[: rule.top_k], ranked[300 - rule.bottom_k:]
            correct = int(inserted[top].sum() + (~inserted[bottom]).sum())
            expected.append(bound(300, rule.guesses, correct, delta=1e-5, confidence=1 - 0.1 / 5))
        assert audit.epsilon_lower_bound == pytest.approx(max(expected), abs=1e-9)
        assert audit.rule == rules[int(np.argmax(expected))] and audit.rules_tried == 5
        assert audit.confidence == 0.9 and audit.method == method


def test_split_chooses_on_the_first_half_and_scores_the_thresholds_on_the_second() -> None:
    rng = np.random.default_rng(5)
    inserted = rng.random(600) < 0.5
    scores = rng.normal(2.0 * inserted, 1.0)
    rules = [GuessRule(20), GuessRule(60), GuessRule(40, 40)]

    audit = audit_one_run_split(scores, inserted, rules, delta=1e-5)

    first = audit_one_run_bonferroni(scores[:300], inserted[:300], rules, delta=1e-5, confidence=1 - 0.05 / 3)
    assert audit.rule == first.rule  # the choice is the first half's best, whatever the correction
    assert audit.threshold_in is not None and audit.m == 300
    held_out, held_in = scores[300:], inserted[300:]
    guess_in = held_out >= audit.threshold_in
    guess_out = ~guess_in & (held_out <= (audit.threshold_out if audit.threshold_out is not None else -np.inf))
    assert audit.guesses == int(guess_in.sum() + guess_out.sum())
    assert audit.correct == int((guess_in & held_in).sum() + (guess_out & ~held_in).sum())
    assert audit.epsilon_lower_bound == one_run_epsilon(300, audit.guesses, audit.correct, delta=1e-5)


def test_an_audit_prints_delta_beside_epsilon_and_serialises() -> None:
    scores = np.arange(400.0)
    audit = audit_one_run_fixed(scores, scores >= 200, GuessRule(np.int64(150), 150), delta=1e-5, method="gdp")  # type: ignore[arg-type]

    record = json.loads(json.dumps(audit.to_dict()))
    assert record["epsilon_lower_bound"] == audit.epsilon_lower_bound > 0 and record["delta"] == 1e-5
    assert record["mu_lower_bound"] == audit.mu_lower_bound and record["policy"] == "fixed"
    assert f"epsilon >= {audit.epsilon_lower_bound:.3f} at delta = 1e-05" in audit.summary()


# --- checks at the boundary ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: one_run_epsilon(0, 0, 0, delta=1e-5), "m must be an integer >= 1, got 0"),
        (lambda: one_run_epsilon(10, 11, 0, delta=1e-5), "guesses must be an integer in [0, 10], got 11"),
        (lambda: one_run_epsilon(10, 5, 6, delta=1e-5), "correct must be an integer in [0, 5], got 6"),
        (lambda: one_run_epsilon(10, 5, 5, delta=1.0), "delta must be a probability in [0, 1), got 1.0"),
        (lambda: one_run_epsilon(10, 5, 5, delta=1e-5, confidence=1), "confidence must be a probability in (0, 1), got 1"),
        (lambda: one_run_epsilon_gdp(10, 5, 5, delta=0.0), "delta must be a probability in (0, 1), got 0.0"),
        (lambda: one_run_gaussian_mu(10, 5, 5.0),  # type: ignore[arg-type]
         "correct must be an integer in [0, 5], got 5.0"),
        (lambda: one_run_p_value(10, 5, 5, epsilon=-1, delta=0), "epsilon must be a finite number >= 0, got -1"),
        (lambda: gaussian_dp_to_epsilon(-1.0, 1e-5), "mu must be a finite number >= 0, got -1.0"),
        (lambda: epsilon_to_gaussian_mu(1.0, 0.0), "delta must be a probability in (0, 1), got 0.0"),
        (lambda: GuessRule(-1), "top_k must be an integer >= 0, got -1"),
        (lambda: audit_one_run_fixed([1.0, 2.0], [True, False], GuessRule(2, 1), delta=1e-5),
         "rule may guess on at most 2 canaries, got GuessRule(top_k=2, bottom_k=1)"),
        (lambda: audit_one_run_bonferroni([1.0, 2.0], [True, False], [], delta=1e-5),
         "rules must hold at least one GuessRule, got none"),
        (lambda: audit_one_run_fixed([1.0, 2.0], [1, 0], GuessRule(1), delta=1e-5),
         "inserted must be booleans shaped like scores (2,), got int64 (2,)"),
        (lambda: audit_one_run_fixed([1.0, np.nan], [True, False], GuessRule(1), delta=1e-5),
         "scores must be a vector of at least 2 finite numbers, got shape (2,)"),
        (lambda: audit_one_run_fixed([1.0, 2.0], [True, False], GuessRule(1), delta=1e-5, method="lira"),  # type: ignore[arg-type]
         "method must be one of steinke, gdp, got 'lira'"),
        (lambda: andrew_estimate([0.1, 0.2], 1, delta=1e-5), "null must be an integer >= 2, got 1"),
        (lambda: andrew_estimate([0.1, 0.1], 100, delta=1e-5),
         "observed_cosines must be at least 2 finite cosines that are not all equal, got shape (2,)"),
    ],
)
def test_bad_inputs_are_one_line_errors_naming_the_field(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        call()

    assert str(raised.value) == message


def test_an_estimate_from_groups_that_barely_overlap_does_not_overflow() -> None:
    rng = np.random.default_rng(0)
    observed = 1.0 + 1e-4 * rng.standard_normal(200)  # canaries seen perfectly
    never_inserted = 1e-4 * rng.standard_normal(200)
    estimate = andrew_estimate(observed, never_inserted, delta=1e-5)
    assert estimate.epsilon_estimate > 1000  # e^epsilon overflowed a float here before
