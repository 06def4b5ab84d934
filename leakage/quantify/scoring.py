"""Score one run: every observer x attack, raw metric and leakage normalised to MPC.

For an observer and an attack the raw metric is measured against ground truth, then

    ``leakage = clip((metric - baseline) / (reference - baseline), 0, 1)``

where ``baseline`` is what the released model alone gives (all that MPC training
reveals, so ``mpc`` scores 0 by construction) and ``reference`` is what the attack gets
from the target's update in the clear.

Scoring never names an attack. Each registered attack declares what it produces
(:attr:`attacks.AttackBase.produces`) and which observers it runs as; a :class:`Scorer`
registered for that product in :data:`SCORERS` measures it:

- ``update_estimate`` (:class:`UpdateScorer`: ``plaintext``, ``aggregate``,
  ``round_difference``, ``disaggregation``, ...): the mean cosine between the observer's
  estimate and the target's true update over the rounds the target took part in;
  baseline: the cosine of the released model's direction ``(final - initial) / rounds``;
  reference 1. Implicit attacks (reading what the view holds) run for every observer
  they apply to; the others when the spec names them, with the spec's options.
- ``reconstruction`` (:class:`ReconstructionScorer`: ``dlg``, ``idlg``,
  ``inverting_gradients``, ``analytic``, ...): PSNR of the target's first-round batch
  reconstructed from the observer's individual estimate of its update (found by the
  update stage); baseline: the PSNR of the dataset's mean input (a guess any observer
  can make); reference: the same attack on the true update.
- ``membership`` (:class:`MembershipScorer`: ``loss_threshold``, ...): AUC of the
  observer's scores of the target's training records against held-out records;
  baseline: the same attack on the released model alone; reference 1.

Scorers run in stages (update estimates first, then what chains on them). An observer
that cannot run an attack gets ``status="not_applicable"`` with the reason, its metric
is the baseline and its leakage 0.
"""

from __future__ import annotations

import math
import statistics
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
from sklearn.metrics import roc_auc_score, roc_curve
from torch import Tensor

from attacks import (
    ATTACKS,
    AttackProduct,
    Knowledge,
    Observation,
    RecoveredUpdate,
    UpdateEstimate,
    ViewerRole,
    create_attack,
)
from leakage.data import Dataset
from leakage.errors import ThreatModelError
from leakage.metrics import membership_figures, psnr, relative_error, score_reconstruction, update_cosine
from leakage.quantify.observers import ROLES, observer_views
from leakage.registry import Registry
from leakage.transcript import Transcript
from leakage.views import RoundView

__all__ = [
    "SCORERS",
    "MembershipScorer",
    "ObserverScoring",
    "ReconstructionScorer",
    "RoundEstimate",
    "ScoreRow",
    "Scorer",
    "ScoringTask",
    "UpdateScorer",
    "estimates_of",
    "normalised_leakage",
    "score_transcript",
    "scored_products",
]

_MAX_IMAGES = 4


@dataclass(frozen=True)
class ScoreRow:
    """One observer x attack on one run: raw metrics, baseline, reference and leakage."""

    observer: str
    observer_name: str
    attack: str
    status: str
    metric: str
    value: float
    baseline: float
    reference: float
    leakage: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    note: str | None = None
    images: Mapping[str, Any] | None = None
    roc: Mapping[str, list[float]] | None = None
    records: Mapping[str, list[float]] | None = None  # membership: each candidate's score and truth

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready row."""
        return {
            "observer": self.observer,
            "observer_name": self.observer_name,
            "attack": self.attack,
            "status": self.status,
            "note": self.note,
            "metric": self.metric,
            "value": self.value,
            "metrics": dict(self.metrics),
            "baseline": self.baseline,
            "reference": self.reference,
            "leakage": self.leakage,
            "images": self.images,
            "roc": None if self.roc is None else {key: list(values) for key, values in self.roc.items()},
            "records": None if self.records is None else {key: list(values) for key, values in self.records.items()},
        }


def normalised_leakage(value: float, baseline: float, reference: float) -> float:
    """Return ``clip((value - baseline) / (reference - baseline), 0, 1)`` (0 when reference <= baseline).

    >>> normalised_leakage(0.7, 0.4, 1.0)  # doctest: +ELLIPSIS
    0.4999...
    >>> normalised_leakage(0.3, 0.4, 1.0), normalised_leakage(2.0, 0.4, 1.0)
    (0.0, 1.0)
    """
    span = reference - baseline
    if not math.isfinite(value) or span <= 0:
        return 0.0
    return min(1.0, max(0.0, (value - baseline) / span))


RoundEstimate = tuple[int, RecoveredUpdate]


def estimates_of(estimate: UpdateEstimate, target: int) -> list[RoundEstimate]:
    """Return ``(round, item)`` for every round an item of ``estimate`` covers that may hold ``target``'s update.

    An item mixing several clients counts when ``target`` is among them (or the observer
    cannot tell whose it is); a window of rounds counts once per round it covers.
    """
    return [
        (round_index, item)
        for item in estimate.recovered
        if item.clients is None or target in item.clients
        for round_index in item.rounds
    ]


@dataclass(frozen=True)
class ScoringTask:
    """What every scorer of one transcript shares: the run, its data and the truth scoring reads.

    Attributes:
        transcript: the run.
        dataset: the data the clients trained on (the indices of the truth refer to it).
        target: the client the attacks go after.
        seed: the job's seed, for the attacks' generators.
        truth_updates: the target's true update per round it took part in, float64 ``[P]``.
        baseline_cosine: the released model's direction against those updates (the MPC level).
        held_out: records no client trained on (the non-members of membership inference).
    """

    transcript: Transcript
    dataset: Dataset
    target: int
    seed: int
    truth_updates: Mapping[int, Tensor]
    baseline_cosine: float
    held_out: Dataset | None = None

    @classmethod
    def of(
        cls, transcript: Transcript, dataset: Dataset, *, target: int, seed: int, held_out: Dataset | None = None
    ) -> ScoringTask:
        """Read the target's truth from ``transcript`` (the only place ground truth is read)."""
        truth = {r.round_index: r.update_of(target).double() for r in transcript.truth.rounds if target in r.client_ids}
        steps = max(1, len(transcript.rounds))
        change = (transcript.final_params.double() - transcript.initial_params.double()) / steps
        cosines = [update_cosine(change, update) for update in truth.values()]
        return cls(transcript, dataset, target, seed, truth, statistics.mean(cosines) if cosines else 0.0, held_out)

    def trained_records(self) -> Tensor:
        """Dataset indices of every record the target trained on in any round, sorted."""
        used = [r.sample_order[self.target] for r in self.transcript.truth.rounds if self.target in r.sample_order]
        return torch.unique(torch.cat(used)) if used else torch.zeros(0, dtype=torch.int64)

    @property
    def first_round(self) -> int | None:
        """The first round the target took part in, or ``None``."""
        return min(self.truth_updates) if self.truth_updates else None

    def generator(self) -> torch.Generator:
        """A fresh generator for one attack run, seeded by the job's seed."""
        return torch.Generator().manual_seed(self.seed)

    def knowledge(self, params: Tensor, num_samples: int) -> Knowledge:
        """The attacker's declared knowledge of the task, with the model at ``params``."""
        settings = self.transcript.settings
        return Knowledge.from_dataset(
            self.dataset,
            self.transcript.build_model(params),
            num_samples=num_samples,
            algorithm=settings["algorithm"],
            lr=float(settings["lr"]),
            local_epochs=int(settings["local_epochs"]),
            batch_size=settings["batch_size"],
        )


@dataclass
class ObserverScoring:
    """One observer while it is scored: its views, and what earlier stages found for later ones.

    Attributes:
        kind: the spec's observer kind (``server``, ``participant``...).
        name: the observer's name in the transcript (``client:1``...).
        views: every view it holds.
        individual: the earliest individual estimates of the target's update the update
            stage found, which reconstruction attacks chain on.
    """

    kind: str
    name: str
    views: list[RoundView]
    individual: list[RoundEstimate] = field(default_factory=list)

    @property
    def role(self) -> ViewerRole:
        """The role the observer plays towards an attack."""
        return ROLES[self.kind]

    def not_applicable(self, attack: str, metric: str, baseline: float, reference: float, note: str) -> ScoreRow:
        """A row for an attack this observer cannot run: the baseline metric and leakage 0."""
        return ScoreRow(self.kind, self.name, attack, "not_applicable", metric, baseline, baseline, reference, 0.0,
                        note=note)


class Scorer(ABC):
    """Measures the attacks that produce one thing against ground truth.

    One instance scores one transcript (it may cache work shared by observers, such as
    an attack's reference run on the true update). ``stage`` orders scorers: a later
    stage may read what an earlier one left on :class:`ObserverScoring`.
    """

    stage: ClassVar[int] = 0

    def __init__(self, task: ScoringTask) -> None:
        self.task = task

    @abstractmethod
    def score(self, attack: str, options: Mapping[str, Any], observer: ObserverScoring) -> list[ScoreRow]:
        """Return the rows of ``attack`` (built with ``options``) run as ``observer`` (none if it does not apply)."""


SCORERS: Registry[type[Scorer]] = Registry("scorer")


def scored_products() -> tuple[str, ...]:
    """The attack products ``leakage score`` has a scorer for.

    >>> scored_products()
    ('membership', 'reconstruction', 'update_estimate')
    """
    return tuple(SCORERS.names())


@SCORERS.register("update_estimate")
class UpdateScorer(Scorer):
    """Cosine of an observer's estimates of the target's update, against the released model's direction."""

    stage = 0

    def score(self, attack: str, options: Mapping[str, Any], observer: ObserverScoring) -> list[ScoreRow]:
        task = self.task
        if not ATTACKS.get(attack).runs_as(observer.role):
            return []
        baseline = task.baseline_cosine
        try:
            estimate = create_attack(attack, **options).run(observer.views, generator=task.generator())
        except ThreatModelError as error:
            return [observer.not_applicable(attack, "update_cosine", baseline, 1.0, str(error))]
        scored = [(r, item) for r, item in estimates_of(estimate, task.target) if r in task.truth_updates]
        if not scored:
            reason = f"{attack} learned nothing about client {task.target}"
            return [observer.not_applicable(attack, "update_cosine", baseline, 1.0, reason)]
        truth = task.truth_updates
        cosine = statistics.mean(update_cosine(item.update, truth[r]) for r, item in scored)
        relative = statistics.mean(relative_error(item.update, truth[r]) for r, item in scored)
        individual = [(r, item) for r, item in scored if item.count == 1]
        if individual and (not observer.individual or observer.individual[0][0] > individual[0][0]):
            observer.individual = individual
        return [ScoreRow(
            observer.kind, observer.name, attack, "ok", "update_cosine", cosine, baseline, 1.0,
            normalised_leakage(cosine, baseline, 1.0),
            {"update_cosine": cosine, "update_relative_error": relative, "mixed_clients": float(scored[0][1].count)},
        )]


@SCORERS.register("reconstruction")
class ReconstructionScorer(Scorer):
    """PSNR of the target's first-round batch reconstructed from the observer's individual estimate."""

    stage = 1

    def __init__(self, task: ScoringTask) -> None:
        super().__init__(task)
        self._references: dict[str, tuple[float, dict[str, float], Tensor]] = {}
        first = task.first_round
        self._round = first
        if first is None:
            return
        dataset = task.dataset
        truth_round = next(r for r in task.transcript.truth.rounds if r.round_index == first)
        self._batch = truth_round.sample_order[task.target]
        self._true_update = truth_round.update_of(task.target).double()
        self._originals = dataset.denormalize(dataset.inputs[self._batch])
        prior = dataset.denormalize(dataset.inputs).mean(dim=0, keepdim=True)  # the data-free guess
        low, high = dataset.value_range
        self._baseline = float(psnr(prior.expand_as(self._originals), self._originals, data_range=high - low).mean())

    def score(self, attack: str, options: Mapping[str, Any], observer: ObserverScoring) -> list[ScoreRow]:
        first = self._round
        if first is None:
            return []
        task = self.task
        params = task.transcript.rounds[first].params_before
        if attack not in self._references:
            self._references[attack] = self._run(attack, options, params, self._true_update)
        reference = self._references[attack][0]
        usable = [item for r, item in observer.individual if r == first]
        if not usable:
            note = (
                f"no individual estimate of client {task.target}'s round-{first} update"
                if observer.kind != "public" else "the public sees only the released model"
            )
            return [observer.not_applicable(attack, "psnr", self._baseline, reference, note)]
        value, metrics, reconstruction = self._run(attack, options, usable[0].params_before, usable[0].update)
        dataset = task.dataset
        shown = min(_MAX_IMAGES, len(self._batch))
        images = (
            {
                "original": self._originals[:shown].tolist(),
                "reconstruction": reconstruction[:shown].tolist(),
                "value_range": list(dataset.value_range),
            }
            if dataset.kind == "image" else None
        )
        return [ScoreRow(
            observer.kind, observer.name, attack, "ok", "psnr", value, self._baseline, reference,
            normalised_leakage(value, self._baseline, reference), metrics, images=images,
        )]

    def _run(
        self, attack: str, options: Mapping[str, Any], params: Tensor, update: Tensor
    ) -> tuple[float, dict[str, float], Tensor]:
        """Run ``attack`` on ``update`` sent from ``params`` and score it: ``(psnr, metrics, reconstruction)``."""
        task, dataset = self.task, self.task.dataset
        observation = Observation(params, update.to(params.dtype), "update", task.target, self._round)
        knowledge = task.knowledge(params, len(self._batch))
        result = create_attack(attack, **options).run(observation, knowledge, generator=task.generator())
        low, high = dataset.value_range
        reconstruction = result.raw_inputs.detach().clamp(low, high).to(self._originals.dtype)
        score = score_reconstruction(
            reconstruction,
            self._originals,
            reconstructed_labels=result.labels,
            true_labels=dataset.targets[self._batch],
            data_range=high - low,
            kind=dataset.kind,
        )
        value = min(float(score.psnr), 100.0)  # an exact recovery has infinite PSNR
        metrics = {"psnr": value, "label_accuracy": float(score.label_accuracy)}
        if score.ssim is not None:
            metrics["ssim"] = float(score.ssim)
        return value, metrics, reconstruction


@SCORERS.register("membership")
class MembershipScorer(Scorer):
    """AUC of an observer's membership scores: the target's training records against held-out ones.

    Baseline: the same attack run on what the public holds (the released model, all
    that MPC reveals), so membership leakage is measured beyond the released model's;
    reference: a perfect separation (AUC 1).
    """

    stage = 2
    max_non_members = 1000
    max_roc_points = 200  # a report row keeps at most this many points of its ROC curve

    def __init__(self, task: ScoringTask) -> None:
        super().__init__(task)
        self._baselines: dict[str, float] = {}
        self._candidates: Dataset | None = None
        self._auxiliary: Dataset | None = None
        self._labels: list[int] = []
        members = task.trained_records()
        if task.held_out is None or len(task.held_out) == 0 or len(members) == 0:
            self._why = (
                "no held-out records to compare the target's with (task.test_fraction is 0, or a recording "
                "names no held_out records)"
                if task.held_out is None or len(task.held_out) == 0 else f"client {task.target} trained on nothing"
            )
            return
        held_out = task.held_out
        # Half the held-out records are the non-members scored; the other half is the
        # attacker's own data from the distribution (reference models train on it).
        order = torch.randperm(len(held_out), generator=task.generator())
        count = min((len(held_out) + 1) // 2, self.max_non_members)
        chosen, rest = order[:count].sort().values, order[count:].sort().values
        inside, outside = task.dataset.subset(members), held_out.subset(chosen)
        self._candidates = replace(
            inside, inputs=torch.cat([inside.inputs, outside.inputs]),
            targets=torch.cat([inside.targets, outside.targets]), properties={},
        )
        self._auxiliary = held_out.subset(rest) if len(rest) else None
        self._labels = [1] * len(members) + [0] * count

    def score(self, attack: str, options: Mapping[str, Any], observer: ObserverScoring) -> list[ScoreRow]:
        if not ATTACKS.get(attack).runs_as(observer.role):
            return []
        if self._candidates is None:
            return [observer.not_applicable(attack, "auc", 0.5, 1.0, self._why)]
        try:
            if attack not in self._baselines:
                public = self.task.transcript.views_of("public")
                self._baselines[attack] = self._auc(attack, options, public) if public else 0.5
        except ThreatModelError as error:  # the attack cannot run even on the released model
            return [observer.not_applicable(attack, "auc", 0.5, 1.0, str(error))]
        baseline = self._baselines[attack]
        try:
            scores = self._scores(attack, options, observer.views)
        except ThreatModelError as error:
            return [observer.not_applicable(attack, "auc", baseline, 1.0, str(error))]
        value = float(roc_auc_score(self._labels, scores))
        metrics = {
            "auc": value, "members": float(sum(self._labels)), "non_members": float(self._labels.count(0)),
            **membership_figures(self._labels, scores.tolist()),
        }
        false_positives, true_positives, _ = roc_curve(self._labels, scores)
        keep = _thin(false_positives, self.max_roc_points)
        roc = {"fpr": false_positives[keep].tolist(), "tpr": true_positives[keep].tolist()}
        # every candidate's score (members first, then the non-members), for curves and tests of one's own
        records = {"member": [float(label) for label in self._labels],
                   "score": [float(f"{score:.9g}") for score in scores.tolist()]}
        return [ScoreRow(observer.kind, observer.name, attack, "ok", "auc", value, baseline, 1.0,
                         normalised_leakage(value, baseline, 1.0), metrics, roc=roc, records=records)]

    def _auc(self, attack: str, options: Mapping[str, Any], views: Sequence[RoundView]) -> float:
        return float(roc_auc_score(self._labels, self._scores(attack, options, views)))

    def _scores(self, attack: str, options: Mapping[str, Any], views: Sequence[RoundView]) -> Any:
        """The attack's score per candidate (members first), as a NumPy array."""
        task = self.task
        settings = task.transcript.settings
        orders = [r.sample_order[task.target] for r in task.transcript.truth.rounds if task.target in r.sample_order]
        knowledge = Knowledge.from_dataset(
            task.dataset, task.transcript.build_model(), candidates=self._candidates, auxiliary=self._auxiliary,
            lr=float(settings["lr"]), batch_size=settings.get("batch_size"), algorithm=settings["algorithm"],
            local_epochs=int(settings["local_epochs"]), num_samples=max((len(o) for o in orders), default=1),
        )
        result = create_attack(attack, **options).run(views, knowledge, client=task.target, generator=task.generator())
        return result.scores.numpy()


def _thin(false_positive_rates: Any, most: int) -> Any:
    """Indices of the ROC points a report keeps: every point up to 5% FPR (the part that
    matters on a log axis) and at most ``most`` more, evenly spread, the last kept."""
    import numpy as np

    count = len(false_positive_rates)
    if count <= most:
        return np.arange(count)
    low = np.flatnonzero(false_positive_rates <= 0.05)
    spread = np.linspace(0, count - 1, most).round().astype(np.int64)
    return np.unique(np.concatenate([low, spread]))


def score_transcript(
    transcript: Transcript,
    dataset: Dataset,
    *,
    observers: Sequence[str],
    attacks: Sequence[tuple[str, Mapping[str, Any]]],
    target: int,
    seed: int,
    held_out: Dataset | None = None,
) -> list[ScoreRow]:
    """Score every observer x attack on one transcript (ground truth is read here, and only here).

    Args:
        transcript: the run.
        dataset: the data its clients trained on.
        observers: the spec's observer kinds.
        attacks: ``(registry name, options)`` of the spec's attacks; implicit attacks
            (those that only read the view) are added for every observer they run as.
        target: the client the attacks go after.
        seed: the job's seed.
        held_out: records no client trained on (membership inference's non-members).
    """
    task = ScoringTask.of(transcript, dataset, target=target, seed=seed, held_out=held_out)
    planned = _plan(attacks)
    scorers = {product: SCORERS.get(product)(task) for product in {product for _, _, product in planned}}
    stages = sorted({scorer.stage for scorer in scorers.values()})
    rows: list[ScoreRow] = []
    for kind in observers:
        name, views = observer_views(transcript, kind, target)
        if kind == "malicious_server" and name != "malicious_server":  # no recorded deviation: play them here
            from leakage.quantify.active import score_active

            rows += score_active(task, name)  # type: ignore[arg-type]
            continue
        observer = ObserverScoring(kind, name, views)
        for stage in stages:
            for attack, options, product in planned:
                scorer = scorers[product]
                if scorer.stage == stage:
                    rows += scorer.score(attack, options, observer)
    return rows


def _plan(attacks: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, Mapping[str, Any], AttackProduct]]:
    """The spec's attacks with a scorer, after the implicit ones it does not name, each with its product."""
    named = {name for name, _ in attacks}
    implicit: list[tuple[str, Mapping[str, Any]]] = [
        (name, {}) for name in ATTACKS.names() if ATTACKS.get(name).is_implicit and name not in named
    ]
    products = scored_products()
    plan = []
    for name, options in [*implicit, *attacks]:
        product = ATTACKS.get(name).produces
        if product in products:
            plan.append((name, options, product))
    return plan

