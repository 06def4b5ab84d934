"""A privacy audit as a distinguishing game, with a Clopper-Pearson epsilon lower bound.

Each trial is one FedSGD round in which the target trains on one of two neighbouring
datasets: its single-sample batch is either the *canary* or the *other* record (both
known to the attacker, as in DP auditing: Jagielski, Ullman, Oprea, NeurIPS 2020;
Nasr et al., IEEE S&P 2021). The target holds exactly those two records and draws one
per round, so each trial's secret bit is a fair coin the simulation itself flips.

The observer scores each round by how much better its estimate of the target's update
matches the canary's update than the other record's (``cos(e, u_canary) - cos(e,
u_other)``, both computed at that round's model). A threshold chosen on the first half
of the trials is applied to the second half, whose false-positive and false-negative
counts give one-sided Clopper-Pearson bounds and

    ``epsilon >= max(log((1 - delta - FNR_hi) / FPR_hi), log((1 - delta - FPR_hi) / FNR_hi))``

at the stated confidence (each rate bounded at ``(1 + confidence) / 2``, so both hold
jointly). For ``dp`` the accountant's epsilon after one round is reported next to it for
observers its guarantee covers (not those reading plaintext uploads: central DP trusts
the server): a valid bound never exceeds it.

The observer's estimate comes from the registered update-recovery attacks that run as
it (the implicit ones and those the spec names); the one mixing the fewest clients'
updates is used, and the result names it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve
from torch import Tensor
from torch.func import grad

from attacks import ATTACKS, create_attack, use_batch_statistics
from leakage.data import Dataset
from leakage.errors import ThreatModelError
from leakage.metrics import update_cosine
from leakage.quantify.observers import ROLES, observer_views
from leakage.quantify.scoring import estimates_of
from leakage.simulation import make_loss
from leakage.transcript import Transcript

__all__ = ["AuditResult", "audit_transcript", "clopper_pearson", "epsilon_lower_bound"]

@dataclass(frozen=True)
class AuditResult:
    """The outcome of the distinguishing game for one observer."""

    observer: str
    observer_name: str
    method: str
    trials: int
    tpr: float
    fpr: float
    auc: float
    epsilon_lower_bound: float
    confidence: float
    accountant_epsilon: float | None
    roc: Mapping[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result."""
        return {
            "observer": self.observer,
            "observer_name": self.observer_name,
            "method": self.method,
            "trials": self.trials,
            "tpr": self.tpr,
            "fpr": self.fpr,
            "auc": self.auc,
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "confidence": self.confidence,
            "accountant_epsilon": self.accountant_epsilon,
            "roc": dict(self.roc),
        }


def clopper_pearson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """Return one-sided ``(lower, upper)`` Clopper-Pearson bounds of a binomial proportion.

    Each bound holds with probability ``confidence`` on its own.

    >>> low, high = clopper_pearson(0, 20, 0.95)
    >>> low, round(high, 4)
    (0.0, 0.1391)
    """
    if trials <= 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    lower = 0.0 if successes == 0 else float(stats.beta.ppf(alpha, successes, trials - successes + 1))
    upper = 1.0 if successes == trials else float(stats.beta.ppf(1 - alpha, successes + 1, trials - successes))
    return lower, upper


def epsilon_lower_bound(
    false_positives: int, negatives: int, false_negatives: int, positives: int, *, confidence: float, delta: float
) -> float:
    """Return the empirical epsilon lower bound of a distinguisher's error counts (0 if none).

    >>> round(epsilon_lower_bound(0, 32, 0, 32, confidence=0.95, delta=0.0), 3)
    2.102
    """
    per_rate = (1 + confidence) / 2
    fpr_high = clopper_pearson(false_positives, negatives, per_rate)[1]
    fnr_high = clopper_pearson(false_negatives, positives, per_rate)[1]
    bounds = [0.0]
    for numerator, denominator in ((1 - delta - fnr_high, fpr_high), (1 - delta - fpr_high, fnr_high)):
        if numerator > 0 and denominator > 0:
            bounds.append(math.log(numerator / denominator))
    return max(bounds)


def audit_transcript(
    transcript: Transcript,
    dataset: Dataset,
    *,
    observers: Sequence[str],
    target: int,
    confidence: float,
    delta: float,
    attacks: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> list[AuditResult]:
    """Play the distinguishing game on an audit run and return one result per observer.

    ``attacks`` are the spec's ``(name, options)``; those producing update estimates
    join the implicit ones as the observer's ways to estimate the target's update.

    ``transcript`` must come from a FedSGD run with ``batch_size=1`` in which ``target``
    holds exactly two samples (``partition="target"``, ``target_size=2``): the lower
    dataset index is the canary.

    Raises:
        ThreatModelError: the run is not an audit run (the target does not hold two samples).
    """
    records = transcript.truth.partition[target]
    if len(records) != 2:
        raise ThreatModelError(f"an audit run gives client {target} exactly two samples, got {len(records)}")
    canary, other = sorted(int(i) for i in records)
    rounds = [r for r in transcript.truth.rounds if target in r.client_ids]
    truth = {r.round_index: int(r.sample_order[target][0]) == canary for r in rounds}
    candidates = _candidate_updates(transcript, dataset, canary, other)
    accountant = transcript.rounds[0].public.get("epsilon")
    results = []
    for observer in observers:
        if observer == "malicious_server":  # the game measures what views reveal; the active rows are scored apart
            continue
        name, views = observer_views(transcript, observer, target)
        method, scores = _scores(observer, views, target, candidates, attacks)
        labels = [truth[r] for r in sorted(truth)]
        values = [scores.get(r, 0.0) for r in sorted(truth)]
        # central DP trusts the server: an observer reading plaintext uploads is outside its guarantee
        reads_uploads = method in ATTACKS and ATTACKS.get(method).reads_uploads
        covered = accountant if isinstance(accountant, (int, float)) and not reads_uploads else None
        results.append(_game(observer, name, method, labels, values, confidence, delta,
                             None if covered is None else float(covered)))
    return results


def _candidate_updates(
    transcript: Transcript, dataset: Dataset, canary: int, other: int
) -> dict[int, tuple[Tensor, Tensor]]:
    """Per round, the updates ``-lr * grad`` the canary and the other record would produce."""
    # a client's step normalises with its batch and moves no buffer the transform could see
    model = use_batch_statistics(transcript.build_model())
    loss = make_loss(model, transcript.settings.get("loss", "cross_entropy"))
    layout = transcript.layout
    lr = float(transcript.settings["lr"])
    inputs = dataset.inputs[[canary, other]]
    targets = dataset.targets[[canary, other]]

    def flat_loss(flat: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return loss(layout.unflatten(flat), x.unsqueeze(0), y.unsqueeze(0))

    gradient = grad(flat_loss)
    updates: dict[int, tuple[Tensor, Tensor]] = {}
    for record in transcript.rounds:
        params = record.params_before
        canary_update = -lr * gradient(params, inputs[0], targets[0]).double()
        other_update = -lr * gradient(params, inputs[1], targets[1]).double()
        updates[record.round_index] = (canary_update, other_update)
    return updates


def _scores(
    observer: str,
    views: Sequence[Any],
    target: int,
    candidates: Mapping[int, tuple[Tensor, Tensor]],
    attacks: Sequence[tuple[str, Mapping[str, Any]]],
) -> tuple[str, dict[int, float]]:
    """Score each round with the observer's least mixed estimate: ``(attack, {round: score})``."""
    named = {name for name, _ in attacks}
    tried: list[tuple[str, Mapping[str, Any]]] = [
        (name, {}) for name in ATTACKS.names() if ATTACKS.get(name).is_implicit and name not in named
    ]
    best: tuple[float, str, dict[int, float]] | None = None
    for name, options in [*tried, *attacks]:
        attack = ATTACKS.get(name)
        if attack.produces != "update_estimate" or not attack.runs_as(ROLES[observer]):
            continue
        try:
            found = estimates_of(create_attack(name, **options).run(views), target)
        except ThreatModelError:
            continue
        if not found:
            continue
        mixed = sum(item.count for _, item in found) / len(found)
        if best is None or mixed < best[0]:
            best = (mixed, name, {
                r: update_cosine(item.update, candidates[r][0]) - update_cosine(item.update, candidates[r][1])
                for r, item in found
            })
    return ("final_model", {}) if best is None else (best[1], best[2])


def _game(
    observer: str,
    name: str,
    method: str,
    labels: Sequence[bool],
    scores: Sequence[float],
    confidence: float,
    delta: float,
    accountant: float | None,
) -> AuditResult:
    truth = np.asarray(labels, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    half = len(values) // 2
    threshold = _best_threshold(values[:half], truth[:half])
    held_out, held_truth = values[half:], truth[half:]
    guesses = held_out > threshold
    positives, negatives = int(held_truth.sum()), int((~held_truth).sum())
    false_positives = int((guesses & ~held_truth).sum())
    false_negatives = int((~guesses & held_truth).sum())
    epsilon = epsilon_lower_bound(
        false_positives, negatives, false_negatives, positives, confidence=confidence, delta=delta
    )
    both = 0 < truth.sum() < len(truth)
    auc = float(roc_auc_score(truth, values)) if both else 0.5
    fpr, tpr, _ = roc_curve(truth, values) if both else (np.array([0.0, 1.0]), np.array([0.0, 1.0]), None)
    return AuditResult(
        observer=observer,
        observer_name=name,
        method=method,
        trials=len(values),
        tpr=1 - false_negatives / positives if positives else 0.0,
        fpr=false_positives / negatives if negatives else 0.0,
        auc=auc,
        epsilon_lower_bound=epsilon,
        confidence=confidence,
        accountant_epsilon=accountant,
        roc={"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]},
    )


def _best_threshold(values: np.ndarray[Any, np.dtype[np.float64]], truth: np.ndarray[Any, np.dtype[np.bool_]]) -> float:
    """The threshold with the largest TPR - FPR on the selection half.

    Candidates are the midpoints between consecutive distinct scores; among equally good
    ones the middle one is taken, the widest margin on both sides for the held-out half.
    """
    if len(values) == 0 or truth.all() or not truth.any():
        return float("inf")
    distinct = np.unique(values)
    if len(distinct) < 2:
        return float("inf")
    candidates = (distinct[1:] + distinct[:-1]) / 2
    gaps = np.array([(values[truth] > c).mean() - (values[~truth] > c).mean() for c in candidates])
    if gaps.max() <= 0:
        return float("inf")
    best = candidates[np.flatnonzero(gaps == gaps.max())]
    return float(best[len(best) // 2])
