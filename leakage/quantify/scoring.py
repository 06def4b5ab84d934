"""Score one simulated run: every observer x attack, raw metric and leakage normalised to MPC.

For an observer and an attack the raw metric is measured against ground truth, then

    ``leakage = clip((metric - baseline) / (reference - baseline), 0, 1)``

where ``baseline`` is what the released model alone gives (all that MPC training
reveals, so ``mpc`` scores 0 by construction) and ``reference`` is what the attack gets
from the target's update in the clear. Two families:

- **update recovery** (``plaintext``, ``round_difference``, ``disaggregation``, and
  ``aggregate``, the server's or eavesdropper's view of everyone's mean): the mean
  cosine between the observer's estimate and the target's true update over the rounds
  the target took part in; baseline: the cosine of the released model's direction
  ``(final - initial) / rounds``; reference 1.
- **reconstruction** (``dlg``, ``idlg``, ``inverting_gradients``, ``analytic``): PSNR of
  the target's first-round batch reconstructed from the observer's individual estimate
  of its update; baseline: the PSNR of the dataset's mean input (a guess any observer
  can make); reference: the same attack on the true update.

An observer that cannot run an attack gets ``status="not_applicable"`` with the reason,
its metric is the baseline and its leakage 0.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from attacks import Knowledge, create_attack
from leakage.data import Dataset
from leakage.errors import ThreatModelError
from leakage.metrics import psnr, relative_error, score_reconstruction, update_cosine
from leakage.quantify.estimates import (
    TargetEstimate,
    final_model_estimates,
    observer_views,
    target_estimates,
)
from leakage.transcript import Transcript

__all__ = [
    "RECONSTRUCTION_ATTACKS",
    "UPDATE_ATTACKS",
    "ScoreRow",
    "normalised_leakage",
    "score_transcript",
]

UPDATE_ATTACKS: tuple[str, ...] = ("round_difference", "disaggregation")
RECONSTRUCTION_ATTACKS: tuple[str, ...] = ("dlg", "idlg", "inverting_gradients", "analytic")
_OBSERVER_METHODS: Mapping[str, tuple[str, ...]] = {
    "server": ("plaintext", "disaggregation", "aggregate"),
    "eavesdropper": ("plaintext", "disaggregation", "aggregate"),
    "participant": ("round_difference",),
    "coalition": ("round_difference",),
    "public": (),
}
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


def score_transcript(
    transcript: Transcript,
    dataset: Dataset,
    *,
    observers: Sequence[str],
    attacks: Sequence[tuple[str, Mapping[str, Any]]],
    target: int,
    seed: int,
) -> list[ScoreRow]:
    """Score every observer x attack on one transcript (ground truth is read here, and only here)."""
    truth_updates = {
        r.round_index: r.update_of(target).double() for r in transcript.truth.rounds if target in r.client_ids
    }
    baseline_cosine = _mean_cosine(final_model_estimates(transcript), truth_updates)
    update_names = {name for name, _ in attacks if name in UPDATE_ATTACKS}
    reconstruction = [(name, options) for name, options in attacks if name in RECONSTRUCTION_ATTACKS]
    first_round = min(truth_updates) if truth_updates else None
    references: dict[str, tuple[float, dict[str, float], Tensor]] = {}
    prior = dataset.denormalize(dataset.inputs).mean(dim=0, keepdim=True)  # the data-free guess, once
    rows: list[ScoreRow] = []
    for observer in observers:
        name, views = observer_views(transcript, observer, target)
        best: list[TargetEstimate] = []
        for method in _OBSERVER_METHODS[observer]:
            if method not in ("plaintext", "aggregate") and method not in update_names:
                continue
            try:
                estimates = target_estimates(method, views, target)
            except ThreatModelError as error:
                rows.append(_not_applicable(observer, name, method, "update_cosine", baseline_cosine, 1.0, str(error)))
                continue
            scored = [e for e in estimates if e.round_index in truth_updates]
            if not scored:
                reason = f"{method} learned nothing about client {target}"
                rows.append(_not_applicable(observer, name, method, "update_cosine", baseline_cosine, 1.0, reason))
                continue
            cosine = _mean_cosine(scored, truth_updates)
            relative = statistics.mean(relative_error(e.update, truth_updates[e.round_index]) for e in scored)
            rows.append(ScoreRow(
                observer, name, method, "ok", "update_cosine", cosine, baseline_cosine, 1.0,
                normalised_leakage(cosine, baseline_cosine, 1.0),
                {"update_cosine": cosine, "update_relative_error": relative, "mixed_clients": float(scored[0].count)},
            ))
            individual = [e for e in scored if e.count == 1]
            if individual and (not best or best[0].round_index > individual[0].round_index):
                best = individual
        for attack_name, options in reconstruction:
            if first_round is None:
                continue
            rows.append(_reconstruct(
                transcript, dataset, observer, name, attack_name, options, best, target, first_round, seed, references,
                prior,
            ))
    return rows


def _mean_cosine(estimates: Sequence[TargetEstimate], truth: Mapping[int, Tensor]) -> float:
    values = [update_cosine(e.update, truth[e.round_index]) for e in estimates if e.round_index in truth]
    return statistics.mean(values) if values else 0.0


def _not_applicable(
    observer: str, name: str, attack: str, metric: str, baseline: float, reference: float, note: str
) -> ScoreRow:
    return ScoreRow(observer, name, attack, "not_applicable", metric, baseline, baseline, reference, 0.0, note=note)


def _reconstruct(
    transcript: Transcript,
    dataset: Dataset,
    observer: str,
    name: str,
    attack_name: str,
    options: Mapping[str, Any],
    estimates: Sequence[TargetEstimate],
    target: int,
    first_round: int,
    seed: int,
    references: dict[str, tuple[float, dict[str, float], Tensor]],
    prior: Tensor,
) -> ScoreRow:
    truth_round = next(r for r in transcript.truth.rounds if r.round_index == first_round)
    batch = truth_round.sample_order[target]
    originals = dataset.denormalize(dataset.inputs[batch])
    true_labels = dataset.targets[batch]
    data_range = dataset.value_range[1] - dataset.value_range[0]
    baseline = float(psnr(prior.expand_as(originals), originals, data_range=data_range).mean())
    record = transcript.rounds[first_round]
    knowledge = _knowledge(transcript, dataset, record.params_before, len(batch))
    if attack_name not in references:
        true_update = truth_round.update_of(target).double()
        estimate = TargetEstimate(first_round, record.params_before, true_update, 1)
        references[attack_name] = _run_reconstruction(
            attack_name, options, estimate, knowledge, target, seed, originals, true_labels, dataset
        )
    reference, _, _ = references[attack_name]
    usable = [e for e in estimates if e.round_index == first_round]
    if not usable:
        note = (
            f"no individual estimate of client {target}'s round-{first_round} update"
            if observer != "public" else "the public sees only the released model"
        )
        return _not_applicable(observer, name, attack_name, "psnr", baseline, reference, note)
    value, metrics, reconstruction = _run_reconstruction(
        attack_name, options, usable[0], _knowledge(transcript, dataset, usable[0].params_before, len(batch)),
        target, seed, originals, true_labels, dataset,
    )
    shown = min(_MAX_IMAGES, len(batch))
    images = (
        {
            "original": originals[:shown].tolist(),
            "reconstruction": reconstruction[:shown].tolist(),
            "value_range": list(dataset.value_range),
        }
        if dataset.kind == "image" else None
    )
    return ScoreRow(
        observer, name, attack_name, "ok", "psnr", value, baseline, reference,
        normalised_leakage(value, baseline, reference), metrics, images=images,
    )


def _knowledge(transcript: Transcript, dataset: Dataset, params: Tensor, num_samples: int) -> Knowledge:
    settings = transcript.settings
    return Knowledge.from_dataset(
        dataset,
        transcript.build_model(params),
        num_samples=num_samples,
        algorithm=settings["algorithm"],
        lr=float(settings["lr"]),
        local_epochs=int(settings["local_epochs"]),
        batch_size=settings["batch_size"],
    )


def _run_reconstruction(
    attack_name: str,
    options: Mapping[str, Any],
    estimate: TargetEstimate,
    knowledge: Knowledge,
    target: int,
    seed: int,
    originals: Tensor,
    true_labels: Tensor,
    dataset: Dataset,
) -> tuple[float, dict[str, float], Tensor]:
    """Run a reconstruction attack on ``estimate`` and score it: ``(psnr, metrics, reconstruction)``."""
    observation = estimate.observation(target)
    observation = replace(observation, value=observation.value.to(observation.params.dtype))
    result = create_attack(attack_name, **options).run(
        observation, knowledge, generator=torch.Generator().manual_seed(seed)
    )
    low, high = dataset.value_range
    reconstruction = result.raw_inputs.detach().clamp(low, high).to(originals.dtype)
    score = score_reconstruction(
        reconstruction,
        originals,
        reconstructed_labels=result.labels,
        true_labels=true_labels,
        data_range=high - low,
        kind=dataset.kind,
    )
    value = min(float(score.psnr), 100.0)  # an exact recovery has infinite PSNR
    metrics = {"psnr": value, "label_accuracy": float(score.label_accuracy)}
    if score.ssim is not None:
        metrics["ssim"] = float(score.ssim)
    return value, metrics, reconstruction
