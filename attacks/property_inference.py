"""``property_inference``: passive inference of a property of a client's data from its updates.

Melis, Song, De Cristofaro, Shmatikov, "Exploiting Unintended Feature Leakage in
Collaborative Learning" (IEEE S&P 2019), section "Passive property inference": the
attacker holds auxiliary data from the task's distribution labelled with a property
that is *not* the task's label (a person's gender in a face-attribute task), and asks
whether a target's training data has that property.

At each observed global model ``theta_t`` (the start of a round) the attacker plays
the clients itself: it trains copies of the model on auxiliary batches with the
property (``D_prop``) and without it (``D_nonprop``), exactly as the public training
rule says (FedSGD: ``u = -lr * grad L(theta_t; batch)``; FedAvg: the local SGD steps),
and shapes each example like what it observes. When its observation mixes ``k``
clients (a participant's round difference among ``N`` participants gives the mean of
the other ``k = N - 1`` updates; a server reading one plaintext upload has ``k = 1``),
an example is

    ``x = (u(b_0) + u(b_1) + ... + u(b_{k-1})) / k``,  ``y = [b_0 drawn from D_prop]``,

with ``b_0`` from ``D_prop`` or ``D_nonprop`` and ``b_1 .. b_{k-1}`` from the population
the attacker assumes for the others (``D_nonprop`` in the paper's experiments, or all
auxiliary data for a realistic population). A binary classifier (logistic regression or
a random forest) trained on ``(x / ||x||, y)`` then scores the observed update; the
per-round probabilities are combined into one score that the target's data has the
property (or, for ``k > 1`` without a named target, that one of the mixed clients does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor
from tqdm.auto import tqdm

from attacks.base import ATTACKS, Knowledge, Observation
from attacks.history import HistoryAttack, group_by_round
from attacks.round_difference import RoundDifferenceAttack
from attacks.shadow_training import shadow_updates
from leakage.checks import require_bool, require_choice, require_int
from leakage.data import Dataset
from leakage.errors import ConfigError, ThreatModelError
from leakage.models import ParameterLayout
from leakage.simulation.local_training import (
    LossName,
)
from leakage.views import RoundView, parse_client_observer

__all__ = [
    "COMBINE_RULES",
    "OthersPopulation",
    "PropertyClassifier",
    "PropertyInferenceAttack",
    "PropertyInferenceResult",
    "ScoreCombination",
    "combine_round_scores",
]

PropertyClassifier = Literal["logistic", "random_forest"]
OthersPopulation = Literal["any", "without_property"]
ScoreCombination = Literal["mean", "log_odds"]
COMBINE_RULES: tuple[ScoreCombination, ...] = get_args(ScoreCombination)
_CLASSIFIERS: tuple[PropertyClassifier, ...] = get_args(PropertyClassifier)
_POPULATIONS: tuple[OthersPopulation, ...] = get_args(OthersPopulation)
_FOREST_TREES = 100
# Inverse L2 strength on standardised features: strong, as updates have more
# coordinates than there are simulated examples.
_LOGISTIC_C = 0.1
_CLIP = 1e-6  # keeps log-odds of a confident classifier finite
# Bytes of simulated inputs and updates one vmap call may hold.
_CHUNK_BYTES = 32 << 20


@dataclass(frozen=True)
class PropertyInferenceResult:
    """What a property-inference attack concluded about its target.

    Attributes:
        attack: the attack's registry name.
        observer: who ran it (``"client:1"``, ``"server"``).
        property: the property's name in the auxiliary data.
        score: in ``[0, 1]``; higher means "the target's data has the property".
        round_scores: the classifier's probability in each round used, in round order.
        rounds_used: those rounds.
        assumptions: facts the attacker assumed rather than saw (named in reports).
        seconds: wall time.
        details: attack-specific numbers (clients mixed per observation, training accuracy).
    """

    attack: str
    observer: str
    property: str
    score: float
    round_scores: tuple[float, ...]
    rounds_used: tuple[int, ...]
    assumptions: tuple[str, ...] = ()
    seconds: float = 0.0
    details: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "attack": self.attack,
            "observer": self.observer,
            "property": self.property,
            "score": self.score,
            "round_scores": list(self.round_scores),
            "rounds_used": list(self.rounds_used),
            "assumptions": list(self.assumptions),
            "seconds": self.seconds,
            **dict(self.details),
        }


def combine_round_scores(scores: Sequence[float], rule: ScoreCombination = "mean") -> float:
    """Return one score in ``[0, 1]`` from per-round probabilities ``scores``.

    ``"mean"`` averages the probabilities; ``"log_odds"`` treats rounds as independent
    evidence and returns ``sigmoid(sum_t logit(p_t))`` (each ``p_t`` clipped to
    ``[1e-6, 1 - 1e-6]``), which grows more confident with every agreeing round.

    Raises:
        ConfigError: ``scores`` is empty or ``rule`` is unknown.

    >>> combine_round_scores([0.6, 0.8])
    0.7
    >>> round(combine_round_scores([0.6, 0.8], "log_odds"), 3)
    0.857
    """
    require_choice("combine", rule, COMBINE_RULES)
    if not scores:
        raise ConfigError("combine_round_scores needs at least one score")
    values = np.asarray(scores, dtype=np.float64)
    if rule == "mean":
        return float(values.mean())
    clipped = np.clip(values, _CLIP, 1.0 - _CLIP)
    log_odds = float(np.sum(np.log(clipped) - np.log1p(-clipped)))
    return float(1.0 / (1.0 + math.exp(-log_odds))) if log_odds > -700 else 0.0


@dataclass(frozen=True)
class _Observed:
    """One observed update and what the attacker knows about how it was produced."""

    round_index: int
    params_before: Tensor
    update: Tensor
    count: int  # clients mixed into ``update``
    weight: float | None  # their total aggregation weight, when known
    public: Mapping[str, object]


@ATTACKS.register("property_inference")
class PropertyInferenceAttack(HistoryAttack[PropertyInferenceResult]):
    """Infer whether a client's data has a property, from updates an observer saw (Melis et al. 2019).

    Run it on a participant's views (the observed update is the round difference: the
    mean update of the other participants; with two participants that is the target's
    own update), on a coalition's views, or on the server's or an eavesdropper's views
    under a scheme that shows plaintext uploads (``plain``; name the target with
    ``client``). ``knowledge`` must declare the architecture (``model``) and auxiliary
    data with the property flags (``auxiliary``), disjoint from the clients' data. The
    training rule (algorithm, learning rate, batch size, local epochs) is read from the
    views' ``public`` parameters, else taken from ``knowledge`` (and listed as assumed).

    Args:
        property: name in ``knowledge.auxiliary.properties``; ``None`` picks the
            auxiliary data's only property.
        client: the target client. Required for a server or eavesdropper that
            received several uploads; for participants it keeps only the rounds whose
            round difference includes it.
        batches_per_class: auxiliary examples per class (with / without the property)
            simulated at every observed round, >= 2.
        classifier: ``"logistic"`` (standardised features, logistic regression with
            L2 penalty ``C = 0.1``) or ``"random_forest"`` (100 trees), from scikit-learn.
        others: the data the attacker assumes for the other clients mixed into an
            observation: ``"without_property"`` (the paper's experiments) or ``"any"``
            (auxiliary samples drawn regardless of the property).
        rounds: ``None`` uses every round with an observed update; an integer ``n`` the
            first ``n`` of them; a sequence names the round indices.
        combine: how per-round scores become one, see :func:`combine_round_scores`.
        normalise: scale every update to unit L2 norm before classifying, so the
            classifier reads its direction rather than its size.

    Raises:
        ConfigError: an option is invalid (the message names it).

    >>> from leakage import load_dataset, simulate, create_model
    >>> data = load_dataset("binary_features", n_samples=600)
    >>> clients, auxiliary = data.subset(torch.arange(200)), data.subset(torch.arange(200, 600))
    >>> transcript = simulate(dataset=clients, model="logreg", n_clients=2, rounds=2, algorithm="fedsgd",
    ...                       batch_size=16, partition="target", partition_options={"property": "dense",
    ...                       "target_size": 16, "target_has_property": True})
    >>> net = create_model("logreg", input_shape=(32,), num_classes=2, generator=torch.Generator())
    >>> knowledge = Knowledge.from_dataset(data, net, auxiliary=auxiliary)
    >>> result = PropertyInferenceAttack(batches_per_class=16).run(transcript.views_of("client:1"), knowledge)
    >>> result.rounds_used, 0.0 <= result.score <= 1.0
    ((0, 1), True)
    """

    name = "property_inference"
    observer = "a participant (round difference), or the server or an eavesdropper reading plaintext uploads"
    role = "any"
    produces = "property_score"

    def __init__(
        self,
        *,
        property: str | None = None,
        client: int | None = None,
        batches_per_class: int = 64,
        classifier: PropertyClassifier = "logistic",
        others: OthersPopulation = "any",
        rounds: int | Sequence[int] | None = None,
        combine: ScoreCombination = "mean",
        normalise: bool = True,
    ) -> None:
        if property is not None and (not isinstance(property, str) or not property):
            raise ConfigError(f"property must be a property name or None, got {property!r}")
        if client is not None:
            client = require_int("client", client, minimum=0)
        self.property = property
        self.client = client
        self.batches_per_class = require_int("batches_per_class", batches_per_class, minimum=2)
        self.classifier: PropertyClassifier = require_choice("classifier", classifier, _CLASSIFIERS)
        self.others: OthersPopulation = require_choice("others", others, _POPULATIONS)
        self.rounds = _check_rounds(rounds)
        self.combine: ScoreCombination = require_choice("combine", combine, COMBINE_RULES)
        self.normalise = require_bool("normalise", normalise)

    def _run(
        self,
        history: Sequence[RoundView],
        knowledge: Knowledge | None,
        *,
        generator: torch.Generator,
        show_progress: bool,
    ) -> PropertyInferenceResult:
        auxiliary, flags, property_name = self._auxiliary(knowledge)
        assert knowledge is not None  # checked by _auxiliary
        assumptions: set[str] = {
            f"auxiliary data labelled with property {property_name!r}, "
            "disjoint from the clients' (knowledge.auxiliary)",
            "the declared architecture (knowledge.model)",
        }
        observer, observed = self._observe(history, knowledge, assumptions)
        observed = self._select_rounds(observer, observed)
        layout = ParameterLayout.of(knowledge.model)
        with_property = torch.nonzero(flags).reshape(-1)
        without_property = torch.nonzero(~flags).reshape(-1)
        population = without_property if self.others == "without_property" else torch.arange(len(flags))
        round_scores: list[float] = []
        accuracies: list[float] = []
        for item in tqdm(observed, desc="property inference rounds", disable=not show_progress):
            if item.update.numel() != layout.num_parameters:
                raise ThreatModelError(
                    f"the observed update of round {item.round_index} has {item.update.numel()} values but "
                    f"knowledge.model has {layout.num_parameters} parameters"
                )
            rule = _training_rule(item, knowledge, assumptions)
            if item.count > 1:
                assumptions.add(
                    f"the other clients mixed into an observation hold data like the auxiliary data ({self.others})"
                )
            self._check_pools(rule.samples_per_client, with_property, without_property, population)
            simulated = [
                shadow_updates(
                    knowledge.model,
                    item.params_before.to(torch.float32),
                    auxiliary,
                    pool,
                    population,
                    examples=self.batches_per_class,
                    clients_mixed=item.count,
                    samples_per_client=rule.samples_per_client,
                    lr=rule.lr,
                    generator=generator,
                    algorithm=rule.algorithm,
                    batch_size=rule.batch_size,
                    local_epochs=rule.local_epochs,
                    loss=rule.loss,
                ).updates
                for pool in (without_property, with_property)
            ]
            features = torch.cat(simulated)
            labels = np.repeat(np.arange(2), self.batches_per_class)
            observed_features = item.update.to(torch.float32).reshape(1, -1)
            if self.normalise:
                features = _unit_norm(features)
                observed_features = _unit_norm(observed_features)
            classifier = self._classifier(generator)
            train_x = features.numpy().astype(np.float64)
            classifier.fit(train_x, labels)
            accuracies.append(float(classifier.score(train_x, labels)))
            positive = list(classifier.classes_).index(1)
            probability = classifier.predict_proba(observed_features.numpy().astype(np.float64))[0, positive]
            round_scores.append(float(probability))
        return PropertyInferenceResult(
            attack=self.name,
            observer=observer,
            property=property_name,
            score=combine_round_scores(round_scores, self.combine),
            round_scores=tuple(round_scores),
            rounds_used=tuple(item.round_index for item in observed),
            assumptions=tuple(sorted(assumptions)),
            details={
                "clients_mixed": float(np.mean([item.count for item in observed])),
                "examples_per_round": float(2 * self.batches_per_class),
                "training_accuracy": float(np.mean(accuracies)),
            },
        )

    def _auxiliary(self, knowledge: Knowledge | None) -> tuple[Dataset, Tensor, str]:
        """Return the auxiliary data, its property flags and the property's name."""
        if knowledge is None or knowledge.auxiliary is None:
            raise ConfigError("property_inference needs knowledge.auxiliary: data with property flags")
        auxiliary = knowledge.auxiliary
        names = sorted(auxiliary.properties)
        if self.property is None:
            if len(names) != 1:
                raise ConfigError(f"property must name one of the auxiliary properties {names}, got None")
            name = names[0]
        elif self.property not in auxiliary.properties:
            raise ConfigError(f"property must be one of the auxiliary properties {names}, got {self.property!r}")
        else:
            name = self.property
        flags = auxiliary.properties[name].to(torch.bool).reshape(-1)
        if flags.numel() != len(auxiliary):
            raise ConfigError(
                f"auxiliary property {name!r} flags {flags.numel()} samples, the data has {len(auxiliary)}"
            )
        return auxiliary, flags, name

    def _check_pools(self, samples: int, with_property: Tensor, without_property: Tensor, population: Tensor) -> None:
        pools = {"with the property": with_property, "without it": without_property, "for the others": population}
        for what, pool in pools.items():
            if len(pool) < samples:
                raise ConfigError(
                    f"knowledge.auxiliary holds {len(pool)} samples {what}, fewer than the {samples} "
                    "that each simulated client trains on"
                )

    def _observe(
        self, history: Sequence[RoundView], knowledge: Knowledge, assumptions: set[str]
    ) -> tuple[str, list[_Observed]]:
        """Return the observer's name and every update it saw that involves the target."""
        if all(view.observer.startswith("client:") for view in history):
            return self._observe_as_participant(history, knowledge, assumptions)
        observer = history[0].observer
        if self.client is None:
            senders = {key for view in history for key in view.received if key.startswith("update:")}
            if len(senders) > 1:
                raise ConfigError(
                    f"client must name the target: observer {observer!r} received uploads of "
                    f"{len(senders)} clients, got None"
                )
        found: list[_Observed] = []
        for view in history:
            try:
                upload = Observation.from_view(view, self.client)
            except ThreatModelError:
                continue
            weights = view.public.get("weights")
            weight = weights.get(str(upload.client)) if isinstance(weights, dict) else None
            found.append(
                _Observed(
                    view.round_index,
                    upload.params,
                    upload.value,
                    1,
                    float(weight) if isinstance(weight, (int, float)) else None,
                    view.public,
                )
            )
        if not found:
            target = "its only sender" if self.client is None else f"client {self.client}"
            raise ThreatModelError(
                f"observer {observer!r} saw no plaintext upload of {target} with the model it started from "
                "(masked, encrypted or secret-shared uploads hide it)"
            )
        return observer, found

    def _observe_as_participant(
        self, history: Sequence[RoundView], knowledge: Knowledge, assumptions: set[str]
    ) -> tuple[str, list[_Observed]]:
        coalition = {parse_client_observer(view.observer) for view in history}
        if self.client is not None and self.client in coalition:
            raise ConfigError(f"client must be another participant than the observer, got {self.client}")
        estimate = RoundDifferenceAttack().run(history, knowledge)
        assumptions.update(estimate.assumptions)
        by_round = group_by_round(history)
        found = [
            _Observed(
                item.round_index,
                item.params_before,
                item.update,
                item.count,
                item.weight,
                by_round[item.round_index][0].public,
            )
            for item in estimate.recovered
            if self.client is None or item.clients is None or self.client in item.clients
        ]
        if not found:
            raise ThreatModelError(
                f"{estimate.observer} saw no round whose round difference includes client {self.client}"
            )
        return estimate.observer, found

    def _select_rounds(self, observer: str, observed: list[_Observed]) -> list[_Observed]:
        if self.rounds is None:
            return observed
        if isinstance(self.rounds, int):
            return observed[: self.rounds]
        available = {item.round_index: item for item in observed}
        missing = [round_index for round_index in self.rounds if round_index not in available]
        if missing:
            raise ThreatModelError(
                f"{observer} saw no usable update in rounds {missing}; it has rounds {sorted(available)}"
            )
        return [available[round_index] for round_index in sorted(self.rounds)]

    def _classifier(self, generator: torch.Generator) -> Any:
        """Return a fresh scikit-learn classifier, seeded from ``generator``."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        if self.classifier == "logistic":
            # liblinear: fast and exact for a few hundred examples; it shuffles, hence the seed.
            logistic = LogisticRegression(C=_LOGISTIC_C, solver="liblinear", random_state=seed)
            return make_pipeline(StandardScaler(), logistic)
        return RandomForestClassifier(n_estimators=_FOREST_TREES, random_state=seed, n_jobs=1)


def _check_rounds(rounds: object) -> int | tuple[int, ...] | None:
    if rounds is None:
        return None
    if isinstance(rounds, Sequence) and not isinstance(rounds, str):
        if not rounds:
            raise ConfigError("rounds must be None, an integer >= 1 or a non-empty list of round indices, got []")
        indices = tuple(require_int("rounds", value, minimum=0) for value in rounds)
        if len(set(indices)) != len(indices):
            raise ConfigError(f"rounds must not repeat a round, got {list(indices)}")
        return indices
    return require_int("rounds", rounds, minimum=1)


@dataclass(frozen=True)
class _TrainingRule:
    """How each client behind an observation trained: the public rule plus its assumed data size."""

    algorithm: Literal["fedsgd", "fedavg"]
    lr: float
    samples_per_client: int
    batch_size: int | None
    local_epochs: int
    loss: LossName


def _training_rule(item: _Observed, knowledge: Knowledge, assumptions: set[str]) -> _TrainingRule:
    """Return how the clients behind ``item`` trained, from the view's public facts or ``knowledge``."""
    public = item.public
    algorithm = public.get("algorithm")
    if algorithm != "fedsgd" and algorithm != "fedavg":
        algorithm = knowledge.algorithm
        assumptions.add(f"the clients ran {algorithm} (knowledge.algorithm)")
    lr = public.get("lr")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        if knowledge.lr is None:
            raise ThreatModelError(
                f"round {item.round_index}: the view does not state the client learning rate; declare knowledge.lr"
            )
        lr = knowledge.lr
        assumptions.add("the client learning rate (knowledge.lr)")
    stated_batch = public.get("batch_size", knowledge.batch_size)
    batch_size = stated_batch if isinstance(stated_batch, int) and stated_batch >= 1 else knowledge.batch_size
    local_epochs = public.get("local_epochs")
    if not isinstance(local_epochs, int) or isinstance(local_epochs, bool) or local_epochs < 1:
        local_epochs = knowledge.local_epochs
    # Views state no loss today; a transcript trained with the Taylor loss says so here.
    loss: LossName = "taylor_logistic" if public.get("loss") == "taylor_logistic" else "cross_entropy"
    weighting = public.get("weighting", "sample_count")
    if weighting == "sample_count" and item.weight is not None and item.weight >= item.count:
        samples = max(1, round(item.weight / item.count))
        if item.count > 1:
            assumptions.add("the clients mixed into an observation hold equally many samples")
    elif algorithm == "fedsgd" and batch_size is not None:
        samples = batch_size
        assumptions.add(f"every client drew a full batch of {batch_size} samples")
    else:
        samples = knowledge.num_samples
        assumptions.add(f"every client holds knowledge.num_samples={samples} samples")
    return _TrainingRule(
        algorithm=algorithm,
        lr=float(lr),
        samples_per_client=samples,
        batch_size=batch_size,
        local_epochs=local_epochs if algorithm == "fedavg" else 1,
        loss=loss,
    )


def _unit_norm(features: Tensor) -> Tensor:
    """Scale each row ``[E, P]`` to unit L2 norm (a zero row stays zero)."""
    scaled: Tensor = features / features.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return scaled
