"""Privacy accounting for Gaussian noise on clipped client updates, via Google's ``dp_accounting``.

Every DP scheme in this package releases, per round, a sum of client updates clipped to
L2 norm ``C`` plus Gaussian noise of standard deviation ``noise_multiplier * C``. This
module turns ``(noise_multiplier, rounds, delta, client sampling)`` into the epsilon
spent, by building a ``dp_accounting`` event and handing it to the RDP accountant
(Mironov 2017; Mironov, Talwar, Zhang 2019 "Rényi Differential Privacy of the Sampled
Gaussian Mechanism") or the privacy-loss-distribution accountant (Koskela, Jälkö,
Honkela 2020; Doroshenko, Ghazi, Kamath, Kumar, Manurangsi 2022 "Connect the Dots").

**The accountant must match how the simulator samples clients.** Amplification by
sampling is only sound for the sampling that really happened:

- ``"poisson"``: each client takes part independently with probability ``q``. The
  round count is random and secret, so user-level DP is stated for *adding or removing*
  one client, which moves the clipped sum by at most ``C``:
  ``PoissonSampledDpEvent(q, GaussianDpEvent(noise_multiplier))`` per round with the
  ``ADD_OR_REMOVE_ONE`` relation (the analysis of DP-SGD, Abadi et al. 2016, and of
  DP-FedAvg, McMahan et al. 2018).
- ``"fixed"``: exactly ``k`` of ``N`` clients, uniformly without replacement. Every
  round has ``k`` clients, so removing one is visible; the only meaningful neighbours
  *replace* one client's data, which moves the clipped sum by up to ``2C``:
  ``SampledWithoutReplacementDpEvent(N, k, GaussianDpEvent(noise_multiplier / 2))``
  with the ``REPLACE_ONE`` relation, bounded by Wang, Balle, Kasiviswanathan 2019
  ("Subsampled Rényi Differential Privacy and Analytical Moments Accountant",
  Theorem 27). RDP only: ``dp_accounting``'s PLD accountant does not support it.
- sampling rate 1 (everyone, every round): no amplification, ``GaussianDpEvent``
  composed ``steps`` times, ``ADD_OR_REMOVE_ONE``, whichever sampling was named.

The two sampling modes give very different epsilons at the same rate ``k/N``: the
replace-one bound for sampling without replacement is looser than the Poisson analysis,
and the doubled sensitivity halves the effective noise multiplier, which roughly
quadruples the per-round Rényi divergence. Accounting a fixed-size simulation as if it
were Poisson therefore understates the privacy loss.

``dp_accounting`` defines ``GaussianDpEvent.noise_multiplier`` as noise std over the
norm bound ``C`` but its replace-one formulas take std over the L2 sensitivity
(google/differential-privacy issue #378); the explicit halving above is the correction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, get_args

import dp_accounting
from dp_accounting import pld, rdp

from leakage.aggregation import ClientSampling, Deployment
from leakage.checks import require_choice, require_in_interval, require_int, require_positive_float
from leakage.errors import ConfigError

__all__ = [
    "ACCOUNTING_METHODS",
    "AccountingMethod",
    "NeighboringRelation",
    "PrivacySpent",
    "compute_epsilon",
    "deployment_privacy_spent",
    "local_privacy_spent",
    "privacy_spent",
    "require_accountable",
    "require_delta",
    "require_method",
]

AccountingMethod = Literal["rdp", "pld"]
ACCOUNTING_METHODS: tuple[AccountingMethod, ...] = get_args(AccountingMethod)
NeighboringRelation = Literal["add_or_remove_one", "replace_one"]
_CLIENT_SAMPLINGS: tuple[str, ...] = get_args(ClientSampling)


@dataclass(frozen=True)
class PrivacySpent:
    """An ``(epsilon, delta)`` guarantee and the facts it was computed from.

    Attributes:
        epsilon: the privacy loss bound; ``0.0`` after zero steps.
        delta: the failure probability it holds with.
        steps: how many noisy releases were composed (rounds).
        noise_multiplier: noise std divided by the clipping norm ``C``.
        sampling_rate: probability that one client takes part in one step; ``1.0`` when
            no amplification by sampling was claimed.
        neighboring_relation: which neighbouring datasets the guarantee compares.
        method: ``"rdp"`` or ``"pld"``.
    """

    epsilon: float
    delta: float
    steps: int
    noise_multiplier: float
    sampling_rate: float
    neighboring_relation: NeighboringRelation
    method: AccountingMethod

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain-data form for JSON."""
        return dict(asdict(self))


def require_delta(value: object) -> float:
    """Return ``delta`` as a float if it lies strictly between 0 and 1, else raise ConfigError.

    >>> require_delta(1e-5)
    1e-05
    """
    return require_in_interval("delta", value, 0, 1, inclusive="neither")


def require_method(value: object, *, name: str = "accountant") -> AccountingMethod:
    """Return ``value`` if it names an accounting method, else raise ConfigError naming ``name``.

    >>> require_method("pld")
    'pld'
    """
    return require_choice(name, value, ACCOUNTING_METHODS)


def require_accountable(method: AccountingMethod, deployment: Deployment) -> None:
    """Raise ConfigError if ``method`` cannot account ``deployment``'s client sampling.

    >>> from leakage.aggregation import Deployment
    >>> fixed = Deployment(n_clients=10, clients_per_round=5, client_sampling="fixed",
    ...                    rounds=3, num_parameters=2, client_weights=(1.0,) * 10)
    >>> require_accountable("pld", fixed)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: accountant 'pld' cannot account fixed-size client sampling ...
    """
    if method == "pld" and deployment.client_sampling == "fixed" and deployment.sampling_rate < 1:
        raise ConfigError(
            "accountant 'pld' cannot account fixed-size client sampling ("
            "dp_accounting has no PLD for sampling without replacement); use accountant 'rdp' "
            "or client_sampling 'poisson'"
        )


def privacy_spent(
    *,
    noise_multiplier: float,
    steps: int,
    delta: float,
    client_sampling: ClientSampling,
    sampling_rate: float | None = None,
    population: int | None = None,
    sample_size: int | None = None,
    method: AccountingMethod = "rdp",
) -> PrivacySpent:
    """Return the privacy spent by ``steps`` rounds of the sampled Gaussian mechanism.

    Each round releases ``sum_i clip(u_i, C) + N(0, (noise_multiplier * C)^2 I)`` over the
    sampled clients; see the module docstring for which ``dp_accounting`` event each
    sampling mode becomes and why.

    Args:
        noise_multiplier: noise std over the clipping norm ``C``; > 0.
        steps: rounds composed; >= 0.
        delta: target delta in (0, 1).
        client_sampling: how clients were really sampled, ``"poisson"`` or ``"fixed"``.
        sampling_rate: per-round participation probability in (0, 1]; Poisson only.
            Give either this or ``population`` and ``sample_size``.
        population: clients in the population ``N``.
        sample_size: clients per round ``k`` (the expected number under Poisson).
        method: ``"rdp"`` or ``"pld"``; PLD does not support fixed-size sampling.

    Raises:
        ConfigError: a parameter is out of range (the message names it), the sampling is
            under- or over-specified, or PLD was asked for fixed-size sampling.

    >>> spent = privacy_spent(noise_multiplier=1.1, steps=14_062, delta=1e-5,
    ...                       client_sampling="poisson", population=60_000, sample_size=256)
    >>> round(spent.epsilon, 3), spent.neighboring_relation
    (2.597, 'add_or_remove_one')
    """
    noise_multiplier = require_positive_float("noise_multiplier", noise_multiplier)
    steps = require_int("steps", steps, minimum=0)
    delta = require_delta(delta)
    method = require_method(method, name="method")
    require_choice("client_sampling", client_sampling, _CLIENT_SAMPLINGS)
    rate = _sampling_rate(client_sampling, sampling_rate, population, sample_size)
    if rate == 1.0:
        event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(noise_multiplier)
        relation: NeighboringRelation = "add_or_remove_one"
    elif client_sampling == "poisson":
        event = dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(noise_multiplier))
        relation = "add_or_remove_one"
    else:
        if method == "pld":
            raise ConfigError(
                "method 'pld' does not support fixed-size client sampling: dp_accounting's PLD "
                "accountant has no event for sampling without replacement; use method 'rdp' "
                "or client_sampling 'poisson'"
            )
        # Replacing one client moves the clipped sum by up to 2C: halve the multiplier.
        event = dp_accounting.SampledWithoutReplacementDpEvent(
            population, sample_size, dp_accounting.GaussianDpEvent(noise_multiplier / 2)
        )
        relation = "replace_one"
    epsilon = _epsilon(event, steps, delta, method, relation)
    return PrivacySpent(epsilon, delta, steps, noise_multiplier, rate, relation, method)


def compute_epsilon(
    *,
    noise_multiplier: float,
    steps: int,
    delta: float,
    client_sampling: ClientSampling,
    sampling_rate: float | None = None,
    population: int | None = None,
    sample_size: int | None = None,
    method: AccountingMethod = "rdp",
) -> float:
    """Return the epsilon of :func:`privacy_spent` (same arguments, same checks).

    >>> round(compute_epsilon(noise_multiplier=4.0, steps=10_000, delta=1e-5,
    ...                       sampling_rate=0.01, client_sampling="poisson"), 3)
    1.035
    """
    return privacy_spent(
        noise_multiplier=noise_multiplier,
        steps=steps,
        delta=delta,
        client_sampling=client_sampling,
        sampling_rate=sampling_rate,
        population=population,
        sample_size=sample_size,
        method=method,
    ).epsilon


def deployment_privacy_spent(
    deployment: Deployment,
    *,
    noise_multiplier: float,
    steps: int,
    delta: float,
    method: AccountingMethod = "rdp",
) -> PrivacySpent:
    """Return :func:`privacy_spent` with the client sampling the simulator uses for ``deployment``.

    >>> from leakage.aggregation import Deployment
    >>> deployment = Deployment(n_clients=100, clients_per_round=1, client_sampling="poisson",
    ...                         rounds=10_000, num_parameters=1, client_weights=(1.0,) * 100)
    >>> round(deployment_privacy_spent(deployment, noise_multiplier=4.0, steps=10_000,
    ...                                delta=1e-5).epsilon, 3)
    1.035
    """
    return privacy_spent(
        noise_multiplier=noise_multiplier,
        steps=steps,
        delta=delta,
        client_sampling=deployment.client_sampling,
        population=deployment.n_clients,
        sample_size=deployment.clients_per_round,
        method=method,
    )


def local_privacy_spent(
    *,
    noise_multiplier: float,
    steps: int,
    delta: float,
    method: AccountingMethod = "rdp",
) -> PrivacySpent:
    """Return the privacy spent by one client's ``steps`` reports under Gaussian noise, unamplified.

    The observer sees each report ``clip(u, C) + N(0, (noise_multiplier * C)^2 I)`` and
    knows who sent it, so nothing is gained from sampling, and the neighbouring inputs
    are any two updates: the L2 sensitivity is ``2C``. Accounted as
    ``GaussianDpEvent(noise_multiplier / 2)`` composed ``steps`` times (the worst case:
    the client reported every time). Local DP in this form follows Duchi, Jordan,
    Wainwright 2013 ("Local Privacy and Statistical Minimax Rates").

    >>> round(local_privacy_spent(noise_multiplier=10.0, steps=1, delta=1e-5).epsilon, 2)
    0.79
    """
    noise_multiplier = require_positive_float("noise_multiplier", noise_multiplier)
    steps = require_int("steps", steps, minimum=0)
    delta = require_delta(delta)
    method = require_method(method, name="method")
    event = dp_accounting.GaussianDpEvent(noise_multiplier / 2)
    # For an unsampled Gaussian the relation is only a label; the halving encodes 2C.
    epsilon = _epsilon(event, steps, delta, method, "add_or_remove_one")
    return PrivacySpent(epsilon, delta, steps, noise_multiplier, 1.0, "replace_one", method)


def _sampling_rate(
    client_sampling: ClientSampling,
    sampling_rate: float | None,
    population: int | None,
    sample_size: int | None,
) -> float:
    """Check the sampling arguments and return the per-round participation probability."""
    sizes_given = population is not None or sample_size is not None
    if sampling_rate is not None:
        if sizes_given:
            raise ConfigError("give either sampling_rate or population and sample_size, not both")
        if client_sampling == "fixed":
            raise ConfigError(
                "fixed-size client sampling needs population and sample_size (integers), "
                "not sampling_rate"
            )
        return require_in_interval("sampling_rate", sampling_rate, 0, 1, inclusive="right")
    if population is None or sample_size is None:
        raise ConfigError("give sampling_rate, or both population and sample_size")
    population = require_int("population", population, minimum=1)
    sample_size = require_int("sample_size", sample_size, minimum=1)
    if sample_size > population:
        raise ConfigError(f"sample_size must be <= population ({population}), got {sample_size}")
    return sample_size / population


def _epsilon(
    event: dp_accounting.DpEvent,
    steps: int,
    delta: float,
    method: AccountingMethod,
    relation: NeighboringRelation,
) -> float:
    """Compose ``event`` ``steps`` times in a fresh ``dp_accounting`` accountant; return epsilon."""
    if steps == 0:
        return 0.0
    neighbors = (
        dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
        if relation == "add_or_remove_one"
        else dp_accounting.NeighboringRelation.REPLACE_ONE
    )
    accountant: dp_accounting.PrivacyAccountant = (
        rdp.RdpAccountant(neighboring_relation=neighbors)
        if method == "rdp"
        else pld.PLDAccountant(neighboring_relation=neighbors)
    )
    accountant.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return float(accountant.get_epsilon(delta))
