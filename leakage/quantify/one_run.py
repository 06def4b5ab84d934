"""One-run privacy auditing: epsilon lower bounds from one training run, and a one-shot estimate.

**The game** (Steinke, Nasr, Jagielski, "Privacy Auditing with One (1) Training Run",
NeurIPS 2023). ``m`` canaries are each put into the one run with probability 1/2,
independently; afterwards the auditor guesses "in" or "out" for ``guesses`` of them
(abstaining on the rest) and ``correct`` guesses are right. If the mechanism is
``(epsilon, delta)``-DP, with ``q = e^epsilon / (1 + e^epsilon)`` and
``f(v) = P[Binomial(guesses, q) >= v]``,

    ``P[correct >= v] <= f(v) + 2 m delta max_{i=1..v} (f(v - i) - f(v)) / i``

(their main theorem with its delta term, computed as in their Appendix D). The audit
rejects ``(epsilon, delta)`` when this p-value is below ``1 - confidence``;
:func:`one_run_epsilon` is the largest such epsilon, a lower bound on the true one.

**The Gaussian (f-DP) variant** (Mahloujifar, Melis, Chaudhuri, "Auditing f-Differential
Privacy in One Run", ICML 2025, Algorithm 3 with two outcomes) tests the hypothesis "the
mechanism is ``mu``-GDP" from the same counts, through the Gaussian trade-off curve:
with ``tau = 1 - confidence``, ``g(x) = Phi(Phi^-1(x) - mu)``, ``r = tau correct / m``
and ``h = tau (guesses - correct) / m``, for ``i = correct - 1, ..., 0``:
``h' = max(h, g(r))``, ``r' = r + i / (guesses - i) (h' - h)``; reject if finally
``r + h > guesses / m``. :func:`one_run_gaussian_mu` is the largest rejected ``mu`` and
:func:`one_run_epsilon_gdp` its ``(epsilon, delta)`` figure: the epsilon at ``delta`` of
the ``mu``-GDP curve, a lower bound for mechanisms whose privacy curve is Gaussian
(DP-SGD, the Gaussian mechanism); with every guess right it is about twice the plain one.

**Conversion** (Dong, Roth, Su 2019): ``mu``-GDP is ``(epsilon, delta(epsilon))``-DP for
every epsilon with ``delta(epsilon) = Phi(-epsilon/mu + mu/2) - e^epsilon
Phi(-epsilon/mu - mu/2)`` (:func:`gaussian_dp_delta`, :func:`gaussian_dp_to_epsilon`,
:func:`epsilon_to_gaussian_mu`).

**Guess policies.** A bound is valid only if the guesses were not tuned on the membership
bits they are scored against: :func:`audit_one_run_fixed` takes one :class:`GuessRule`
fixed in advance (top-k "in", bottom-k "out", abstain between); :func:`audit_one_run_split`
picks the best rule on the first half of the canaries and scores its score thresholds on
the second; :func:`audit_one_run_bonferroni` tries several rules on all canaries at
``1 - (1 - confidence) / len(rules)`` each and keeps the best. Each returns a
:class:`OneRunAudit` with delta beside epsilon.

**Andrew et al.'s estimate** ("One-shot Empirical Privacy Estimation for Federated
Learning", ICLR 2024): canary clients send random directions; the cosines of the
inserted ones with the final model change are fitted with a Gaussian, so are the
unobserved ones' (or ``N(0, 1/d)`` in dimension ``d``), and the epsilon of telling the two
Gaussians apart at delta is reported. :func:`andrew_estimate` returns an
:class:`AndrewEstimate`: an estimate, not a bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, special, stats

from leakage.checks import require_choice, require_in_interval, require_int, require_nonnegative_float
from leakage.errors import ConfigError

__all__ = [
    "AndrewEstimate",
    "GuessRule",
    "OneRunAudit",
    "OneRunMethod",
    "OneRunPolicy",
    "andrew_estimate",
    "audit_one_run_bonferroni",
    "audit_one_run_fixed",
    "audit_one_run_split",
    "epsilon_to_gaussian_mu",
    "gaussian_dp_delta",
    "gaussian_dp_to_epsilon",
    "one_run_epsilon",
    "one_run_epsilon_gdp",
    "one_run_gaussian_mu",
    "one_run_p_value",
]

#: ``"steinke"``: the (epsilon, delta) bound; ``"gdp"``: the Gaussian f-DP bound, read at delta.
OneRunMethod = Literal["steinke", "gdp"]
_METHODS: tuple[OneRunMethod, ...] = ("steinke", "gdp")
#: How the guesses were chosen: one rule fixed in advance, a rule chosen on half the canaries, or several rules.
OneRunPolicy = Literal["fixed", "split", "bonferroni"]
_ROOT_TOLERANCE = 1e-12


# --- Gaussian differential privacy --------------------------------------------------------


def gaussian_dp_delta(mu: float, epsilon: float) -> float:
    """Return the delta at ``epsilon`` of ``mu``-GDP (Dong, Roth, Su 2019, Corollary 2.13).

    >>> round(gaussian_dp_delta(1.0, 0.0), 6)  # 2 Phi(1/2) - 1 at epsilon = 0
    0.382925
    """
    mu = require_nonnegative_float("mu", mu)
    epsilon = require_nonnegative_float("epsilon", epsilon)
    return math.exp(_log_gdp_delta(mu, epsilon)) if mu > 0 else 0.0


def gaussian_dp_to_epsilon(mu: float, delta: float) -> float:
    """Return the smallest epsilon for which ``mu``-GDP is ``(epsilon, delta)``-DP.

    >>> round(gaussian_dp_to_epsilon(1.0, 1e-2), 6)
    2.317789
    """
    mu = require_nonnegative_float("mu", mu)
    delta = _require_open_probability("delta", delta)
    return _gdp_epsilon(mu, delta)


def epsilon_to_gaussian_mu(epsilon: float, delta: float) -> float:
    """Return the ``mu`` whose GDP curve passes through ``(epsilon, delta)``: the largest ``mu``-GDP within it.

    >>> round(epsilon_to_gaussian_mu(gaussian_dp_to_epsilon(0.5, 1e-5), 1e-5), 9)
    0.5
    """
    epsilon = require_nonnegative_float("epsilon", epsilon)
    delta = _require_open_probability("delta", delta)
    if epsilon == 0:  # delta(0) = 2 Phi(mu / 2) - 1
        return float(-2 * special.ndtri((1 - delta) / 2))
    target = math.log(delta)
    low = high = 1.0
    while _log_gdp_delta(low, epsilon) > target:
        low /= 2
    while _log_gdp_delta(high, epsilon) < target:
        high *= 2
    return _root(lambda mu: _log_gdp_delta(mu, epsilon) - target, low, high)


def _log_gdp_delta(mu: float, epsilon: float) -> float:
    # log(Phi(a) - e^eps Phi(b)) = log Phi(a) + log1p(-exp(eps + log Phi(b) - log Phi(a))), exact in the tails
    first = float(special.log_ndtr(-epsilon / mu + mu / 2))
    second = epsilon + float(special.log_ndtr(-epsilon / mu - mu / 2))
    return first + math.log1p(-math.exp(min(second - first, 0.0))) if second < first else -math.inf


def _gdp_epsilon(mu: float, delta: float) -> float:
    if mu == 0 or _log_gdp_delta(mu, 0.0) <= math.log(delta):
        return 0.0
    target = math.log(delta)
    high = 1.0
    while _log_gdp_delta(mu, high) > target:
        high *= 2
    return _root(lambda epsilon: _log_gdp_delta(mu, epsilon) - target, 0.0, high)


# --- Steinke et al.: the (epsilon, delta) bound ------------------------------------------------


def one_run_p_value(m: int, guesses: int, correct: int, *, epsilon: float, delta: float) -> float:
    """Return the probability of ``correct`` or more right guesses under ``(epsilon, delta)``-DP.

    Steinke et al.'s bound (module docstring); ``m`` counts every randomised canary,
    ``guesses`` those guessed (abstentions excluded).

    >>> round(one_run_p_value(64, 64, 64, epsilon=3.0, delta=0.0), 4)  # (e^3 / (1 + e^3))^64
    0.0446
    """
    m, guesses, correct = _require_counts(m, guesses, correct)
    epsilon = require_nonnegative_float("epsilon", epsilon)
    delta = require_in_interval("delta", delta, 0, 1, inclusive="left", what="a probability")
    return _steinke_p_value(m, guesses, correct, epsilon, delta)


def one_run_epsilon(m: int, guesses: int, correct: int, *, delta: float, confidence: float = 0.95) -> float:
    """Return the largest epsilon whose ``(epsilon, delta)``-DP the guesses refute: a lower bound (0 if none).

    Args:
        m: canaries randomised into the run, each with probability 1/2.
        guesses: canaries guessed "in" or "out" (the others abstained on).
        correct: right guesses among them.
        delta: the delta of the refuted claim, in [0, 1).
        confidence: probability that the bound holds, in (0, 1).

    Raises:
        ConfigError: a count or probability outside its range, naming it.

    >>> [round(one_run_epsilon(m, m, m, delta=1e-5), 2) for m in (64, 165, 384, 1000)]
    [3.04, 4.0, 4.84, 5.78]
    """
    m, guesses, correct = _require_counts(m, guesses, correct)
    delta = require_in_interval("delta", delta, 0, 1, inclusive="left", what="a probability")
    confidence = _require_open_probability("confidence", confidence)
    return _steinke_epsilon(m, guesses, correct, delta, 1 - confidence)


def _steinke_p_value(m: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    if correct == 0:
        return 1.0
    q = float(special.expit(epsilon))
    beta = float(stats.binom.sf(correct - 1, guesses, q))
    if delta == 0:
        return min(beta, 1.0)
    # P[v - i <= X <= v - 1] for i = 1..v, summed from the top so no tail is a difference of two near-equal ones
    tails = np.cumsum(stats.binom.pmf(np.arange(correct - 1, -1, -1), guesses, q))
    alpha = float(np.max(tails / np.arange(1, correct + 1)))
    return min(beta + 2 * m * delta * alpha, 1.0)


def _steinke_epsilon(m: int, guesses: int, correct: int, delta: float, significance: float, low: float = 0.0) -> float:
    return _largest_refuted(lambda eps: significance - _steinke_p_value(m, guesses, correct, eps, delta), low)


# --- Mahloujifar et al.: the Gaussian (f-DP) bound ---------------------------------------------


def one_run_gaussian_mu(m: int, guesses: int, correct: int, *, confidence: float = 0.95) -> float:
    """Return the largest ``mu`` whose ``mu``-GDP the guesses refute (0 if none).

    >>> round(one_run_gaussian_mu(1000, 1000, 1000), 3)
    2.368
    """
    m, guesses, correct = _require_counts(m, guesses, correct)
    confidence = _require_open_probability("confidence", confidence)
    return _gdp_mu(m, guesses, correct, 1 - confidence)


def one_run_epsilon_gdp(m: int, guesses: int, correct: int, *, delta: float, confidence: float = 0.95) -> float:
    """Return the epsilon at ``delta`` of the largest refuted ``mu``-GDP curve (see the module docstring).

    A lower bound on epsilon for mechanisms whose privacy curve is Gaussian; for others
    it bounds ``mu``, and the figure is that ``mu``'s epsilon at delta.

    >>> round(one_run_epsilon_gdp(64, 64, 64, delta=1e-5), 2)
    7.34
    """
    m, guesses, correct = _require_counts(m, guesses, correct)
    delta = _require_open_probability("delta", delta)
    confidence = _require_open_probability("confidence", confidence)
    return _gdp_epsilon(_gdp_mu(m, guesses, correct, 1 - confidence), delta)


def _gdp_excess(m: int, guesses: int, correct: int, significance: float, mu: float) -> float:
    """``r + h - guesses / m`` after Algorithm 3's recursion: positive when ``mu``-GDP is refuted."""
    r = significance * correct / m
    h = significance * (guesses - correct) / m
    for i in range(correct - 1, -1, -1):
        blown = float(special.ndtr(special.ndtri(r) - mu))
        if blown <= h:  # h stays, so r stays: a fixed point
            break
        r = min(r + i / (guesses - i) * (blown - h), 1.0)  # r = 1 already refutes; the cap keeps Phi^-1 finite
        h = blown
    return r + h - guesses / m


def _gdp_mu(m: int, guesses: int, correct: int, significance: float, low: float = 0.0) -> float:
    if correct == 0:
        return 0.0
    return _largest_refuted(lambda mu: _gdp_excess(m, guesses, correct, significance, mu), low)


# --- guess policies ------------------------------------------------------------------------


@dataclass(frozen=True)
class GuessRule:
    """Guess "in" for the ``top_k`` highest scores and "out" for the ``bottom_k`` lowest; abstain between.

    Ties are broken by canary index, which is independent of membership.
    """

    top_k: int
    bottom_k: int = 0

    def __post_init__(self) -> None:
        # stored as plain ints so that results serialise to JSON whatever integer type arrived
        object.__setattr__(self, "top_k", require_int("top_k", self.top_k, minimum=0))
        object.__setattr__(self, "bottom_k", require_int("bottom_k", self.bottom_k, minimum=0))

    @property
    def guesses(self) -> int:
        """How many canaries the rule guesses on."""
        return self.top_k + self.bottom_k


@dataclass(frozen=True)
class OneRunAudit:
    """A one-run audit's epsilon lower bound, its delta, and the guesses that gave it."""

    policy: OneRunPolicy
    method: OneRunMethod
    epsilon_lower_bound: float
    delta: float
    confidence: float  # that the bound holds, overall ("bonferroni" tested each rule at 1 - (1 - it) / rules_tried)
    m: int  # randomised canaries the bound counts (the scored half for "split")
    guesses: int
    correct: int
    rule: GuessRule  # the rule whose guesses gave the bound (on the choosing half for "split")
    rules_tried: int
    mu_lower_bound: float | None = None  # "gdp" only: the refuted mu-GDP
    threshold_in: float | None = None  # "split" only: scores >= this were guessed "in"
    threshold_out: float | None = None  # "split" only: scores <= this were guessed "out"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result."""
        return {
            "policy": self.policy,
            "method": self.method,
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "delta": self.delta,
            "confidence": self.confidence,
            "m": self.m,
            "guesses": self.guesses,
            "correct": self.correct,
            "rule": {"top_k": self.rule.top_k, "bottom_k": self.rule.bottom_k},
            "rules_tried": self.rules_tried,
            "mu_lower_bound": self.mu_lower_bound,
            "threshold_in": self.threshold_in,
            "threshold_out": self.threshold_out,
        }

    def summary(self) -> str:
        """One line with delta beside epsilon."""
        return (
            f"epsilon >= {self.epsilon_lower_bound:.3f} at delta = {self.delta:g} ({self.confidence:.0%} confidence; "
            f"{self.correct} of {self.guesses} guesses right among {self.m} canaries; {self.method}, {self.policy})"
        )


def audit_one_run_fixed(
    scores: npt.ArrayLike,
    inserted: npt.ArrayLike,
    rule: GuessRule,
    *,
    delta: float,
    confidence: float = 0.95,
    method: OneRunMethod = "steinke",
) -> OneRunAudit:
    """Return the bound of one guess rule fixed before the scores were seen.

    Args:
        scores: per-canary scores, shape ``(m,)``; higher means "more likely in".
        inserted: per-canary membership bits, shape ``(m,)``.
        rule: the guesses to make.
        delta, confidence: as for :func:`one_run_epsilon`.
        method: ``"steinke"`` (:func:`one_run_epsilon`) or ``"gdp"`` (:func:`one_run_epsilon_gdp`).

    >>> audit = audit_one_run_fixed([0.9, 0.1, 0.8, 0.2], [True, False, True, False], GuessRule(1, 1), delta=1e-5)
    >>> audit.guesses, audit.correct, audit.epsilon_lower_bound
    (2, 2, 0.0)
    """
    values, bits = _require_canaries(scores, inserted)
    delta, confidence, method = _require_audit_settings(delta, confidence, method)
    _require_rules_fit([rule], len(values), "rule")
    guesses, correct = _count(values, bits, rule)
    bound = _best(len(values), [(guesses, correct)], delta, 1 - confidence, method)
    return _audit("fixed", method, bound[1], delta, confidence, len(values), guesses, correct, rule, 1)


def audit_one_run_split(
    scores: npt.ArrayLike,
    inserted: npt.ArrayLike,
    rules: Sequence[GuessRule],
    *,
    delta: float,
    confidence: float = 0.95,
    method: OneRunMethod = "steinke",
) -> OneRunAudit:
    """Return the bound of the rule that does best on the first half of the canaries, scored on the second.

    The chosen rule becomes score thresholds (its lowest "in" and highest "out" score on
    the first half) applied to the second half, whose ``m`` the bound counts. ``rules``
    count canaries of the first half (``len(scores) // 2``). The halves are split by
    index, which is independent of the membership bits.

    >>> index = np.arange(800)
    >>> inserted = index % 2 == 0
    >>> scores = inserted + (index % 200) / 400  # each half: the inserted ones score 1 to 1.495
    >>> audit = audit_one_run_split(scores, inserted, [GuessRule(10), GuessRule(100)], delta=1e-5)
    >>> audit.rule, audit.threshold_in, audit.m, audit.guesses, audit.correct
    (GuessRule(top_k=100, bottom_k=0), 1.25, 400, 100, 100)
    """
    values, bits = _require_canaries(scores, inserted)
    delta, confidence, method = _require_audit_settings(delta, confidence, method)
    half = len(values) // 2
    _require_rules_fit(rules, half, "rules")
    counts = [_count(values[:half], bits[:half], rule) for rule in rules]
    chosen = rules[_best(half, counts, delta, 1 - confidence, method)[0]]
    order = np.sort(values[:half])
    threshold_in = float(order[half - chosen.top_k]) if chosen.top_k else math.inf
    threshold_out = float(order[chosen.bottom_k - 1]) if chosen.bottom_k else -math.inf
    held_out, held_bits = values[half:], bits[half:]
    guess_in = held_out >= threshold_in
    guess_out = ~guess_in & (held_out <= threshold_out)
    guesses = int(guess_in.sum() + guess_out.sum())
    correct = int((guess_in & held_bits).sum() + (guess_out & ~held_bits).sum())
    bound = _best(len(held_out), [(guesses, correct)], delta, 1 - confidence, method)
    return _audit("split", method, bound[1], delta, confidence, len(held_out), guesses, correct, chosen, len(rules),
                  threshold_in=threshold_in if chosen.top_k else None,
                  threshold_out=threshold_out if chosen.bottom_k else None)


def audit_one_run_bonferroni(
    scores: npt.ArrayLike,
    inserted: npt.ArrayLike,
    rules: Sequence[GuessRule],
    *,
    delta: float,
    confidence: float = 0.95,
    method: OneRunMethod = "steinke",
) -> OneRunAudit:
    """Return the best bound over ``rules``, each tested at ``1 - (1 - confidence) / len(rules)``.

    >>> rules = [GuessRule(k, k) for k in (50, 100, 200)]
    >>> separable = np.arange(400.0)
    >>> audit_one_run_bonferroni(separable, separable >= 200, rules, delta=1e-5).rule
    GuessRule(top_k=200, bottom_k=200)
    """
    values, bits = _require_canaries(scores, inserted)
    delta, confidence, method = _require_audit_settings(delta, confidence, method)
    _require_rules_fit(rules, len(values), "rules")
    counts = [_count(values, bits, rule) for rule in rules]
    index, bound = _best(len(values), counts, delta, (1 - confidence) / len(rules), method)
    return _audit("bonferroni", method, bound, delta, confidence, len(values), *counts[index], rules[index], len(rules))


def _count(
    scores: npt.NDArray[np.float64], inserted: npt.NDArray[np.bool_], rule: GuessRule
) -> tuple[int, int]:
    """``(guesses, correct)`` of ``rule`` on these canaries."""
    order = np.argsort(-scores, kind="stable")
    top, bottom = order[: rule.top_k], order[len(order) - rule.bottom_k:]
    return rule.guesses, int(inserted[top].sum() + (~inserted[bottom]).sum())


def _best(
    m: int, counts: Sequence[tuple[int, int]], delta: float, significance: float, method: OneRunMethod
) -> tuple[int, float]:
    """``(index, parameter)`` of the ``(guesses, correct)`` pair refuting the most: epsilon or mu (``_SEARCHES``).

    Exact over all pairs: each is searched from the best so far, which costs one test
    when it refutes no more. Trying the most precise first only makes that common.
    """
    best_index, best = 0, 0.0
    order = sorted(range(len(counts)), key=lambda i: (-counts[i][1] / max(counts[i][0], 1), -counts[i][0]))
    for index in order:
        found = _SEARCHES[method](m, *counts[index], delta, significance, best)
        if found > best:
            best_index, best = index, found
    return best_index, best


def _search_steinke(m: int, guesses: int, correct: int, delta: float, significance: float, best: float) -> float:
    if correct == 0 or (significance <= 0.5 and correct <= guesses * special.expit(best)):
        # precision at most q = e^best / (1 + e^best): the p-value at best is at least
        # P[Binomial(guesses, q) >= floor(guesses q)] >= 1/2 (a binomial's median is at least its mean's floor)
        return best
    return _steinke_epsilon(m, guesses, correct, delta, significance, low=best)


def _search_gdp(m: int, guesses: int, correct: int, delta: float, significance: float, best: float) -> float:
    return _gdp_mu(m, guesses, correct, significance, low=best)


_SEARCHES: dict[OneRunMethod, Callable[[int, int, int, float, float, float], float]] = {
    "steinke": _search_steinke,
    "gdp": _search_gdp,
}


def _audit(
    policy: OneRunPolicy, method: OneRunMethod, parameter: float, delta: float, confidence: float, m: int, guesses: int,
    correct: int, rule: GuessRule, rules_tried: int, threshold_in: float | None = None,
    threshold_out: float | None = None,
) -> OneRunAudit:
    """The result; for "gdp" the refuted mu is read as its epsilon at delta."""
    is_gdp = method == "gdp"
    epsilon = _gdp_epsilon(parameter, delta) if is_gdp else parameter
    return OneRunAudit(
        policy=policy, method=method, epsilon_lower_bound=epsilon, delta=delta, confidence=confidence, m=m,
        guesses=guesses, correct=correct, rule=rule, rules_tried=rules_tried,
        mu_lower_bound=parameter if is_gdp else None, threshold_in=threshold_in, threshold_out=threshold_out,
    )


def _require_canaries(
    scores: npt.ArrayLike, inserted: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    values = np.asarray(scores, dtype=np.float64)
    bits = np.asarray(inserted)
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        raise ConfigError(f"scores must be a vector of at least 2 finite numbers, got shape {values.shape}")
    if bits.shape != values.shape or bits.dtype != np.bool_:
        raise ConfigError(f"inserted must be booleans shaped like scores {values.shape}, got {bits.dtype} {bits.shape}")
    return values, bits


def _require_audit_settings(delta: object, confidence: object, method: object) -> tuple[float, float, OneRunMethod]:
    method_ = require_choice("method", method, _METHODS)
    if method_ == "gdp":  # epsilon of a mu-GDP curve is infinite at delta = 0
        delta_ = _require_open_probability("delta", delta)
    else:
        delta_ = require_in_interval("delta", delta, 0, 1, inclusive="left", what="a probability")
    return delta_, _require_open_probability("confidence", confidence), method_


def _require_rules_fit(rules: Sequence[GuessRule], canaries: int, name: str) -> None:
    if not rules:
        raise ConfigError(f"{name} must hold at least one GuessRule, got none")
    for rule in rules:
        if not isinstance(rule, GuessRule):
            raise ConfigError(f"{name} must hold GuessRule values, got {rule!r}")
        if rule.guesses > canaries:
            raise ConfigError(f"{name} may guess on at most {canaries} canaries, got {rule!r}")


# --- Andrew et al.: the one-shot estimate ------------------------------------------------------


@dataclass(frozen=True)
class AndrewEstimate:
    """Andrew et al.'s one-shot epsilon **estimate** at delta: a point estimate, not a bound."""

    epsilon_estimate: float
    delta: float
    canaries: int  # observed (inserted) canaries whose cosines were fitted
    observed_mean: float
    observed_std: float
    null_mean: float
    null_std: float
    null_source: Literal["dimension", "unobserved_canaries"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result; ``kind`` says it is an estimate."""
        return {
            "kind": "estimate",
            "epsilon_estimate": self.epsilon_estimate,
            "delta": self.delta,
            "canaries": self.canaries,
            "observed_mean": self.observed_mean,
            "observed_std": self.observed_std,
            "null_mean": self.null_mean,
            "null_std": self.null_std,
            "null_source": self.null_source,
        }

    def summary(self) -> str:
        """One line with delta beside epsilon, saying it is an estimate."""
        return (
            f"epsilon ~ {self.epsilon_estimate:.3f} at delta = {self.delta:g} (estimate, not a bound; "
            f"Andrew et al. from {self.canaries} canaries)"
        )


def andrew_estimate(
    observed_cosines: npt.ArrayLike, null: int | npt.ArrayLike, *, delta: float
) -> AndrewEstimate:
    """Return Andrew et al.'s epsilon estimate from canary cosines with the final model change.

    Args:
        observed_cosines: cosines of the inserted canaries' directions with the model
            change, shape ``(k,)``.
        null: the model's dimension ``d`` (unobserved cosines are then ``N(0, 1/d)``, the
            paper's choice for ``d >= 1000``) or the cosines of canaries never inserted.
        delta: in (0, 1).

    The epsilon is exact for the two fitted Gaussians (their privacy loss is quadratic in
    the cosine); for equal standard deviations it is :func:`gaussian_dp_to_epsilon` of
    ``|mean difference| / std``. At small delta it is sensitive to the fitted spreads: at
    delta 1e-5 a 1% mismatch adds about 0.2, so it needs thousands of canaries.

    >>> estimate = andrew_estimate([0.0, 0.1, 0.2], [-0.1, 0.0, 0.1], delta=1e-2)  # means 1 std apart
    >>> round(estimate.epsilon_estimate, 6) == round(gaussian_dp_to_epsilon(1.0, 1e-2), 6)
    True
    """
    observed = _require_cosines("observed_cosines", observed_cosines)
    delta = _require_open_probability("delta", delta)
    source: Literal["dimension", "unobserved_canaries"]
    if isinstance(null, (int, np.integer)) and not isinstance(null, bool):
        # the cosine of a random direction with any fixed vector: N(0, 1/d) up to O(1/d^2)
        null_mean, null_std, source = 0.0, require_int("null", null, minimum=2) ** -0.5, "dimension"
    else:
        unobserved = _require_cosines("null", null)
        null_mean, null_std, source = float(unobserved.mean()), float(unobserved.std(ddof=1)), "unobserved_canaries"
    mean, std = float(observed.mean()), float(observed.std(ddof=1))
    return AndrewEstimate(
        epsilon_estimate=_two_gaussians_epsilon(mean, std, null_mean, null_std, delta), delta=delta,
        canaries=len(observed), observed_mean=mean, observed_std=std, null_mean=null_mean, null_std=null_std,
        null_source=source,
    )


def _require_cosines(name: str, values: object) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) < 2 or not np.isfinite(array).all() or float(array.std()) == 0:
        raise ConfigError(f"{name} must be at least 2 finite cosines that are not all equal, got shape {array.shape}")
    return array


def _hockey_stick(mean_p: float, std_p: float, mean_q: float, std_q: float, epsilon: float) -> float:
    """``sup_S P(S) - e^epsilon Q(S)`` for ``P = N(mean_p, std_p^2)``, ``Q = N(mean_q, std_q^2)``.

    ``S = {y : log p(y) - log q(y) > epsilon} = {a y^2 + b y + c > 0}``.
    """
    a = 0.5 / std_q**2 - 0.5 / std_p**2
    b = mean_p / std_p**2 - mean_q / std_q**2
    c = 0.5 * (mean_q / std_q) ** 2 - 0.5 * (mean_p / std_p) ** 2 + math.log(std_q / std_p) - epsilon

    def mass(mean: float, std: float) -> float:
        if a == 0:
            if b == 0:
                return 1.0 if c > 0 else 0.0
            edge = (-c / b - mean) / std
            return float(special.ndtr(-edge if b > 0 else edge))
        discriminant = b * b - 4 * a * c
        if discriminant <= 0:  # a y^2 + b y + c keeps the sign of a
            return 1.0 if a > 0 else 0.0
        # the stable pair of roots: no difference of near-equal numbers when a is tiny (near-equal stds)
        half = -0.5 * (b + math.copysign(math.sqrt(discriminant), b))
        roots = sorted((half / a, c / half))
        low, high = ((root - mean) / std for root in roots)
        if a > 0:  # outside the roots
            return float(special.ndtr(low) + special.ndtr(-high))
        # between the roots, as a difference of the smaller tails
        return float(special.ndtr(high) - special.ndtr(low) if low < 0 else special.ndtr(-low) - special.ndtr(-high))

    q = mass(mean_q, std_q)
    # e^epsilon q in log space: e^epsilon alone overflows a float beyond epsilon 709
    scaled = 0.0 if q <= 0 else math.exp(min(epsilon + math.log(q), _LOG_FLOAT_MAX))
    return max(mass(mean_p, std_p) - scaled, 0.0)


_LOG_FLOAT_MAX = 709.0
_UNBOUNDED = 1e4


def _two_gaussians_epsilon(mean_p: float, std_p: float, mean_q: float, std_q: float, delta: float) -> float:
    """The smallest epsilon making ``N(mean_p, std_p^2)`` and ``N(mean_q, std_q^2)`` ``(epsilon, delta)``-close."""

    def excess(epsilon: float) -> float:
        return max(_hockey_stick(mean_p, std_p, mean_q, std_q, epsilon),
                   _hockey_stick(mean_q, std_q, mean_p, std_p, epsilon)) - delta

    return _largest_refuted(excess, 0.0)


# --- shared numerics -------------------------------------------------------------------------


def _largest_refuted(excess: Callable[[float], float], low: float) -> float:
    """Where ``excess`` (positive: refuted) turns non-positive above ``low``, or ``low`` if it already is.

    Assumes, as the papers' searches do, that a refuted parameter's smaller ones are
    refuted too. Algorithm 3's excess can jump there rather than cross zero; the root
    finder then returns the jump.
    """
    if excess(low) <= 0:
        return low
    high = max(1.0, 2 * low)
    while excess(high) > 0:
        if high > _UNBOUNDED:  # e.g. two Gaussians with no overlap a float can see: no finite parameter fits
            return math.inf
        low, high = high, 2 * high
    return _root(excess, low, high)


def _root(function: Callable[[float], float], low: float, high: float) -> float:
    return float(optimize.brentq(function, low, high, xtol=_ROOT_TOLERANCE))


def _require_counts(m: object, guesses: object, correct: object) -> tuple[int, int, int]:
    m_ = require_int("m", m, minimum=1)
    guesses_ = require_int("guesses", guesses, minimum=0, maximum=m_)
    return m_, guesses_, require_int("correct", correct, minimum=0, maximum=guesses_)


def _require_open_probability(name: str, value: object) -> float:
    return require_in_interval(name, value, 0, 1, inclusive="neither", what="a probability")
