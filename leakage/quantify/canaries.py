"""Canary clients for one-run privacy audits of a federated run.

**The game** (Steinke, Nasr, Jagielski, NeurIPS 2023, with Andrew et al.'s canary
clients, ICLR 2024). The auditor adds ``m`` canary clients to the population; each is
really put in with probability 1/2, independently (its *membership bit*, drawn from the
canary seed and kept as ground truth apart from every view). A canary client that is
in takes part in the rounds the deployment's client sampling gives it (Poisson: each
round with the real clients' rate) and always uploads the same vector: a random unit
direction scaled to a norm (``"random"``), or a unit vector on one coordinate
(``"dirac"``). The scheme then treats it exactly like a real client: under ``dp`` it is
clipped and noised with the others, under ``plain`` it is one more client with a
typical client's weight.

**The attacker** reads only the global models its observer saw (``eavesdropper`` by
default) and scores each canary per round: the cosine between the canary's direction
and the round's model change ``view.model_change()`` (for Dirac canaries the change of
the canary's coordinate), summed (or maximised) over every round. It does not use the
rounds a canary was sampled in: under Poisson sampling they are secret, and the
accountant's epsilon counts on that. Scoring per round matters: a random unit canary
scored against the final model alone is near chance on a ``10^4``-parameter model.

**The bounds** are :mod:`leakage.quantify.one_run`'s: Steinke et al.'s (epsilon, delta)
bound and its Gaussian f-DP variant, for a guess rule fixed in advance, chosen on one
half of the canaries (``split``), or the best of several Bonferroni-corrected; each
with delta beside epsilon. Andrew et al.'s estimate is reported as an estimate (here
from the per-round scores, with the canaries never inserted as its null), never as a
bound, and the scheme's accountant epsilon (``public["epsilon"]``) beside them: a valid
lower bound never exceeds it.

**Dirac coordinates.** A Dirac canary needs a coordinate no real client moves. Given
``coordinates`` that the data never move (an MLP's input weights of pixels that are
constant in the data), pass ``isolate=False``; by default (``isolate=True``) the
coordinates are set aside: drawn from the canary seed and *zeroed in every real
update* before the scheme sees it, so the model never trains them. Either way each
round's ``metrics["canary_coordinates_real_max"]`` records the largest real movement on
them before zeroing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from leakage.aggregation import (
    AggregationScheme,
    Deployment,
    RoundContext,
    RoundOutcome,
    WrappedScheme,
    create_scheme,
)
from leakage.checks import require_bool, require_choice, require_int, require_positive_float
from leakage.data import Dataset
from leakage.errors import ConfigError
from leakage.quantify.one_run import (
    AndrewEstimate,
    GuessRule,
    OneRunAudit,
    andrew_estimate,
    audit_one_run_bonferroni,
    audit_one_run_fixed,
    audit_one_run_split,
)
from leakage.simulation import SimulationSettings, Simulator
from leakage.transcript import Transcript
from leakage.views import RoundView, parse_client_observer, parse_received_key

__all__ = [
    "CANARY_KINDS",
    "AuditSet",
    "CanaryAudit",
    "CanaryKind",
    "CanarySpec",
    "CanaryTruth",
    "ScoreAggregate",
    "WithCanaries",
    "audit_canaries",
    "audit_with_canaries",
    "canary_scores",
    "default_guess_rules",
    "find_audit",
    "one_run_audits",
]

CanaryKind = Literal["random", "dirac"]
CANARY_KINDS: tuple[CanaryKind, ...] = ("random", "dirac")
#: How a canary's per-round scores become one: their sum or their maximum over rounds.
ScoreAggregate = Literal["sum", "max"]
_AGGREGATES: tuple[ScoreAggregate, ...] = ("sum", "max")
# stream paths under the canary seed: never renumber, only append
_BITS, _DIRECTIONS, _SAMPLING = 0, 1, 2
_DEFAULT_DELTA = 1e-5


@dataclass(frozen=True)
class CanarySpec:
    """The canary clients of one audit.

    Attributes:
        m: canary clients, each put into the run with probability 1/2.
        kind: ``"random"`` (a random unit direction in parameter space) or ``"dirac"``
            (a unit vector on one coordinate no real client moves).
        norm: the canary update's L2 norm; ``None``: the scheme's ``clip_norm`` (the
            largest a clipped client can send).
        coordinates: ``"dirac"`` only: one distinct coordinate per canary; ``None``
            draws them from the seed.
        isolate: ``"dirac"`` only: zero the coordinates in every real update (needed
            unless the data never move them).
        seed: the canary randomness (membership bits, directions, coordinates,
            sampling), apart from the simulation's.
    """

    m: int
    kind: CanaryKind = "random"
    norm: float | None = None
    coordinates: tuple[int, ...] | None = None
    isolate: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "m", require_int("m", self.m, minimum=2))
        object.__setattr__(self, "kind", require_choice("kind", self.kind, CANARY_KINDS))
        if self.norm is not None:
            object.__setattr__(self, "norm", require_positive_float("norm", self.norm))
        object.__setattr__(self, "isolate", require_bool("isolate", self.isolate))
        object.__setattr__(self, "seed", require_int("seed", self.seed, minimum=0))
        if self.coordinates is not None:
            if self.kind != "dirac":
                raise ConfigError(f"coordinates are for kind 'dirac' only, got kind {self.kind!r}")
            coordinates = tuple(require_int("coordinates", c, minimum=0) for c in self.coordinates)
            if len(coordinates) != self.m or len(set(coordinates)) != self.m:
                raise ConfigError(f"coordinates must be {self.m} distinct indices (one per canary), got {coordinates}")
            object.__setattr__(self, "coordinates", coordinates)


@dataclass(frozen=True)
class CanaryTruth:
    """The canaries' ground truth, kept by the auditor apart from every view.

    Attributes:
        kind: as in :class:`CanarySpec`.
        directions: ``[m, P]`` float64 unit directions (one-hot rows for Dirac canaries).
        coordinates: ``"dirac"``: each canary's coordinate; empty for ``"random"``.
        norm: the L2 norm each canary uploads.
        inserted: ``[m]`` membership bits.
        isolated: the Dirac coordinates were zeroed in real updates.
    """

    kind: CanaryKind
    directions: Tensor
    coordinates: tuple[int, ...]
    norm: float
    inserted: npt.NDArray[np.bool_]
    isolated: bool


class WithCanaries(WrappedScheme):
    """Runs ``inner`` with the inserted canary clients a round samples appended to its updates.

    Canary ``j`` is client ``n_clients + j``; it is sampled each round with the real
    clients' rate (``clients_per_round / n_clients``; every round when all clients take
    part), from the canary seed, whatever its membership bit, and uploads only when
    inserted. Its row carries the median real client's weight and it never drops.
    Views show what the inner scheme showed of the real clients: canary clients'
    own views, their uploads and their places among the participants and weights are
    removed, so no view holds a membership bit; their contribution stays in every model.

    >>> from leakage.aggregation import PlainAggregation
    >>> WithCanaries(PlainAggregation(), CanarySpec(m=4, norm=1.0)).name
    'plain'
    """

    def __init__(self, inner: AggregationScheme, canaries: CanarySpec) -> None:
        super().__init__(inner)
        if not isinstance(canaries, CanarySpec):
            raise ConfigError(f"canaries must be a CanarySpec, got {type(canaries).__name__}")
        self.canaries = canaries
        self._deployment: Deployment | None = None
        self._truth: CanaryTruth | None = None

    def prepare(self, deployment: Deployment) -> None:
        if self.inner.needs_client_batches:
            raise ConfigError(f"scheme {self.inner.name!r} trains on data batches; canary clients send updates only")
        self.inner.prepare(deployment)
        spec = self.canaries
        norm = spec.norm
        if norm is None:
            clip = self.inner.public_parameters().get("clip_norm")
            if not isinstance(clip, (int, float)):
                raise ConfigError(f"scheme {self.inner.name!r} has no clip_norm; give CanarySpec a norm")
            norm = float(clip)
        if spec.kind == "dirac" and spec.m > deployment.num_parameters:
            raise ConfigError(f"m must be at most {deployment.num_parameters} Dirac canaries (one per coordinate)")
        if spec.coordinates is not None and max(spec.coordinates) >= deployment.num_parameters:
            raise ConfigError(f"coordinates must be below {deployment.num_parameters}, got {max(spec.coordinates)}")
        self._deployment = deployment
        self._truth = _draw_truth(spec, deployment.num_parameters, norm)

    def truth(self) -> CanaryTruth:
        """The canaries' ground truth, for scoring code only."""
        if self._truth is None:
            raise RuntimeError("the canaries are drawn in prepare(deployment); run the simulation first")
        return self._truth

    def sampled(self, round_index: int) -> npt.NDArray[np.bool_]:
        """``[m]``: which canary clients round ``round_index`` samples, inserted or not."""
        deployment = self._require_deployment()
        rng = np.random.default_rng(np.random.SeedSequence(self.canaries.seed, spawn_key=(_SAMPLING, round_index)))
        return np.asarray(rng.random(self.canaries.m) < deployment.sampling_rate)

    @property
    def canary_weight(self) -> float:
        """The aggregation weight of each canary row: the median real client's."""
        return float(statistics.median(self._require_deployment().client_weights))

    def run_round(self, context: RoundContext) -> RoundOutcome:
        deployment, truth = self._require_deployment(), self.truth()
        present = np.flatnonzero(self.sampled(context.round_index) & truth.inserted)
        real_updates = context.updates
        metrics: dict[str, float] = {"canaries_sampled": float(len(present))}
        if truth.coordinates:
            columns = torch.tensor(truth.coordinates, dtype=torch.long)
            moved = real_updates[:, columns].abs().max() if real_updates.numel() else torch.tensor(0.0)
            metrics["canary_coordinates_real_max"] = float(moved)
            if truth.isolated:
                real_updates = real_updates.clone()
                real_updates[:, columns] = 0.0
        rows = (truth.directions[present] * truth.norm).to(real_updates.dtype)
        canary_ids = tuple(deployment.n_clients + int(j) for j in present)
        weight = self.canary_weight
        empty = torch.empty(0, dtype=torch.long)
        widened = replace(
            context,
            client_ids=context.client_ids + canary_ids,
            updates=torch.cat([real_updates, rows]),
            weights=torch.cat([context.weights, torch.full((len(present),), weight, dtype=context.weights.dtype)]),
            client_data={**context.client_data, **{c: empty for c in canary_ids}},
        )
        outcome = self.inner.run_round(widened)
        hidden = frozenset(canary_ids)
        views = {
            observer: _without(view, hidden)
            for observer, view in outcome.views.items()
            if not (observer.startswith("client:") and parse_client_observer(observer) in hidden)
        }
        return replace(
            outcome,
            survivors=tuple(c for c in outcome.survivors if c not in hidden),
            views=views,
            metrics={**outcome.metrics, **metrics},
        )

    def _require_deployment(self) -> Deployment:
        if self._deployment is None:
            raise RuntimeError("call prepare(deployment) before run_round: canary ids and sampling depend on it")
        return self._deployment


def _draw_truth(spec: CanarySpec, num_parameters: int, norm: float) -> CanaryTruth:
    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(stream,)))

    inserted = np.asarray(rng(_BITS).random(spec.m) < 0.5)
    if spec.kind == "random":
        gaussian = torch.from_numpy(rng(_DIRECTIONS).standard_normal((spec.m, num_parameters)))
        directions = gaussian / gaussian.norm(dim=1, keepdim=True)
        return CanaryTruth("random", directions, (), norm, inserted, isolated=False)
    if spec.coordinates is None:
        coordinates = tuple(int(c) for c in rng(_DIRECTIONS).choice(num_parameters, spec.m, replace=False))
    else:
        coordinates = spec.coordinates
    directions = torch.zeros(spec.m, num_parameters, dtype=torch.float64)
    directions[torch.arange(spec.m), torch.tensor(coordinates)] = 1.0
    return CanaryTruth("dirac", directions, coordinates, norm, inserted, isolated=spec.isolate)


def _without(view: RoundView, hidden: frozenset[int]) -> RoundView:
    """``view`` less every trace of the canary clients ``hidden``."""
    if not hidden:
        return view

    def names_canary(key: str) -> bool:
        parsed = parse_received_key(key)
        return parsed.sender in hidden or parsed.recipient in hidden

    public = dict(view.public)
    weights = public.get("weights")
    if isinstance(weights, dict):
        public["weights"] = {c: w for c, w in weights.items() if int(c) not in hidden}
    return replace(
        view,
        received={key: message for key, message in view.received.items() if not names_canary(key)},
        participants=view.participants - hidden,
        public=public,
    )


# --- scoring and auditing -----------------------------------------------------------------


def canary_scores(
    transcript: Transcript, truth: CanaryTruth, *, observer: str = "eavesdropper", aggregate: ScoreAggregate = "sum"
) -> npt.NDArray[np.float64]:
    """Return each canary's score from the model changes ``observer`` saw, shape ``(m,)``.

    Per round: the cosine of each canary's direction with ``view.model_change()``
    (``"random"``), or the change of its coordinate (``"dirac"``); then summed or
    maximised over the rounds the observer saw both models of. Higher means "more
    likely in".

    Raises:
        ConfigError: ``aggregate`` is unknown, or ``observer`` saw no round's models.
    """
    aggregate = require_choice("aggregate", aggregate, _AGGREGATES)
    per_round: list[Tensor] = []
    for record in transcript.rounds:
        view = record.views.get(observer)
        if view is None or view.params_before is None or view.params_after is None:
            continue
        change = view.model_change()
        if truth.coordinates:
            per_round.append(change[list(truth.coordinates)])
        else:
            length = float(change.norm())
            per_round.append(truth.directions @ change / length if length > 0 else torch.zeros(len(truth.inserted)))
    if not per_round:
        raise ConfigError(f"observer {observer!r} saw both global models of no round; choose another observer")
    stacked = torch.stack(per_round)
    scores = stacked.sum(dim=0) if aggregate == "sum" else stacked.max(dim=0).values
    return np.asarray(scores.numpy(), dtype=np.float64)


class AuditSet:
    """What a one-run audit result offers over its ``audits`` and the accountant's epsilon (a mixin)."""

    audits: tuple[OneRunAudit, ...]
    accountant_epsilon: float | None
    accountant_delta: float | None

    @property
    def epsilon_lower_bound(self) -> float:
        """The largest of the audits' lower bounds (each valid at its confidence; see ``audits``)."""
        return max(audit.epsilon_lower_bound for audit in self.audits)

    def audit(self, policy: str, method: str) -> OneRunAudit:
        """The audit of one guess policy and method."""
        return find_audit(self.audits, policy, method)

    def summary_lines(self) -> list[str]:
        """One line per audit, then the accountant's, each epsilon with its delta."""
        lines = [audit.summary() for audit in self.audits]
        if self.accountant_epsilon is not None:
            lines.append(f"accountant: epsilon = {self.accountant_epsilon:.3f} at delta = {self.accountant_delta:g}")
        return lines


@dataclass(frozen=True)
class CanaryAudit(AuditSet):
    """A canary audit of one run: bounds with delta beside epsilon, an estimate, and the accountant's epsilon."""

    scheme: str
    observer: str
    kind: CanaryKind
    aggregate: ScoreAggregate
    m: int
    inserted: int
    rounds: int
    audits: tuple[OneRunAudit, ...]  # fixed, split and Bonferroni, each by Steinke et al. and by GDP
    estimate: AndrewEstimate | None  # an estimate, not a bound; None when it could not be fitted (estimate_note)
    accountant_epsilon: float | None  # the scheme's own epsilon after the last round, where it has one
    accountant_delta: float | None
    isolated_coordinates: bool  # Dirac coordinates were zeroed in real updates
    estimate_note: str | None = None  # why there is no estimate
    scores: tuple[float, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result; the per-canary scores are left out."""
        return {
            "scheme": self.scheme,
            "observer": self.observer,
            "kind": self.kind,
            "aggregate": self.aggregate,
            "m": self.m,
            "inserted": self.inserted,
            "rounds": self.rounds,
            "audits": [audit.to_dict() for audit in self.audits],
            "estimate": None if self.estimate is None else self.estimate.to_dict(),
            "estimate_note": self.estimate_note,
            "accountant_epsilon": self.accountant_epsilon,
            "accountant_delta": self.accountant_delta,
            "isolated_coordinates": self.isolated_coordinates,
        }

    def summary(self) -> str:
        """One line per audit, the estimate and the accountant, each epsilon with its delta."""
        lines = self.summary_lines()
        estimate = self.estimate.summary() if self.estimate is not None else f"no estimate: {self.estimate_note}"
        lines.insert(len(self.audits), estimate)
        return "\n".join(lines)


def audit_canaries(
    transcript: Transcript,
    truth: CanaryTruth,
    *,
    observer: str = "eavesdropper",
    aggregate: ScoreAggregate = "sum",
    rule: GuessRule | None = None,
    rules: Sequence[GuessRule] | None = None,
    delta: float | None = None,
    confidence: float = 0.95,
) -> CanaryAudit:
    """Return the one-run audits of a transcript run with canaries (see the module docstring).

    Args:
        transcript: a run under :class:`WithCanaries`.
        truth: its canaries, ``WithCanaries.truth()``.
        observer: whose views are read; it must see the global models of each round.
        aggregate: how per-round scores combine.
        rule: the guess rule fixed in advance; default guesses "in" for the top 40% and
            "out" for the bottom 40% of the canaries.
        rules: the rules ``split`` (sized for half the canaries) and ``bonferroni`` choose
            from; default top-k and top-k/bottom-k for k a few fractions of the canaries.
        delta: the delta of every epsilon; default the scheme's ``public["delta"]``, else 1e-5.
        confidence: that each bound holds.
    """
    m = len(truth.inserted)
    scores = canary_scores(transcript, truth, observer=observer, aggregate=aggregate)
    last_public: Mapping[str, Any] = transcript.rounds[-1].public if transcript.rounds else {}
    accountant_epsilon = last_public.get("epsilon")
    accountant_delta = last_public.get("delta")
    if delta is None:
        delta = float(accountant_delta) if isinstance(accountant_delta, float) else _DEFAULT_DELTA
    audits = one_run_audits(scores, truth.inserted, rule=rule, rules=rules, delta=delta, confidence=confidence)
    estimate, note = _estimate(scores, truth.inserted, delta)
    return CanaryAudit(
        scheme=transcript.rounds[0].scheme if transcript.rounds else "",
        observer=observer,
        kind=truth.kind,
        aggregate=aggregate,
        m=m,
        inserted=int(truth.inserted.sum()),
        rounds=len(transcript.rounds),
        audits=audits,
        estimate=estimate,
        accountant_epsilon=float(accountant_epsilon) if isinstance(accountant_epsilon, (int, float)) else None,
        accountant_delta=float(accountant_delta) if isinstance(accountant_delta, (int, float)) else None,
        isolated_coordinates=truth.isolated,
        estimate_note=note,
        scores=tuple(float(s) for s in scores),
    )


def one_run_audits(
    scores: npt.NDArray[np.float64],
    inserted: npt.NDArray[np.bool_],
    *,
    rule: GuessRule | None,
    rules: Sequence[GuessRule] | None,
    delta: float,
    confidence: float,
) -> tuple[OneRunAudit, ...]:
    """Steinke et al.'s and the Gaussian-DP bound for the fixed rule, the split and Bonferroni, in that order.

    ``rule`` defaults to "in" for the top 40% and "out" for the bottom 40%; ``rules`` (what
    ``split`` and ``bonferroni`` choose from) to :func:`default_guess_rules`.
    """
    m = len(inserted)
    fixed = rule if rule is not None else GuessRule(top_k=2 * m // 5, bottom_k=2 * m // 5)
    audits: list[OneRunAudit] = []
    for method in ("steinke", "gdp"):
        audits.append(audit_one_run_fixed(scores, inserted, fixed, delta=delta, confidence=confidence, method=method))
        audits.append(audit_one_run_split(scores, inserted, rules or default_guess_rules(m // 2), delta=delta,
                                          confidence=confidence, method=method))
        audits.append(audit_one_run_bonferroni(scores, inserted, rules or default_guess_rules(m), delta=delta,
                                               confidence=confidence, method=method))
    return tuple(audits)


def find_audit(audits: Sequence[OneRunAudit], policy: str, method: str) -> OneRunAudit:
    """The audit of one guess policy and method among ``audits``.

    Raises:
        ConfigError: there is none.
    """
    for audit in audits:
        if audit.policy == policy and audit.method == method:
            return audit
    raise ConfigError(f"no audit with policy {policy!r} and method {method!r}")


def _estimate(
    scores: npt.NDArray[np.float64], inserted: npt.NDArray[np.bool_], delta: float
) -> tuple[AndrewEstimate | None, str | None]:
    """Andrew et al.'s estimate from the inserted canaries' scores against the others', or why there is none."""
    try:
        return andrew_estimate(scores[inserted], scores[~inserted], delta=delta), None
    except ConfigError as error:  # fewer than 2 canaries on a side, or a side with no spread (Dirac, no noise)
        return None, str(error)


def default_guess_rules(canaries: int) -> list[GuessRule]:
    """The rules ``split`` and ``bonferroni`` choose from by default: top-k alone and top-k with
    bottom-k, for k a few fractions of ``canaries`` (duplicates dropped)."""
    rules: list[GuessRule] = []
    for fraction in (0.02, 0.05, 0.1, 0.2, 0.3, 0.4):
        k = max(1, math.floor(fraction * canaries))
        for rule in (GuessRule(top_k=k), GuessRule(top_k=k, bottom_k=k)):
            if rule.guesses <= canaries and rule not in rules:
                rules.append(rule)
    return rules


def audit_with_canaries(
    settings: SimulationSettings,
    canaries: CanarySpec,
    *,
    scheme: AggregationScheme | None = None,
    dataset: Dataset | None = None,
    observer: str = "eavesdropper",
    aggregate: ScoreAggregate = "sum",
    rule: GuessRule | None = None,
    rules: Sequence[GuessRule] | None = None,
    delta: float | None = None,
    confidence: float = 0.95,
) -> CanaryAudit:
    """Simulate ``settings`` with ``canaries`` around its scheme and return the audit (:func:`audit_canaries`).

    Args:
        settings: the deployment.
        canaries: the canary clients.
        scheme: a configured scheme instead of ``settings.scheme``.
        dataset: an already loaded dataset instead of ``settings.dataset``.
        observer, aggregate, rule, rules, delta, confidence: as for :func:`audit_canaries`.

    >>> settings = SimulationSettings(n_clients=5, rounds=2, algorithm="fedsgd", seed=0)
    >>> result = audit_with_canaries(settings, CanarySpec(m=40, norm=1.0))
    >>> result.audit("fixed", "steinke").correct == result.audit("fixed", "steinke").guesses
    True
    """
    inner = scheme if scheme is not None else create_scheme(settings.scheme, **settings.scheme_options)
    wrapped = WithCanaries(inner, canaries)
    transcript = Simulator(settings, dataset=dataset, scheme=wrapped).run()
    return audit_canaries(transcript, wrapped.truth(), observer=observer, aggregate=aggregate, rule=rule,
                          rules=rules, delta=delta, confidence=confidence)
