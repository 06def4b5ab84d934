"""Score a recording of a real run: every observer x attack against each canary client.

A recording (:mod:`leakage.recording`) holds what a real run's observers saw and the
truth of its canary clients, whose data the auditor controls. Scoring reads it as a
transcript and runs the same scorers as a simulated run (:func:`score_transcript`), once
per canary as the target, and writes the same report, marked as a recording
(``report.json``'s ``recording``).

The spec, when given, supplies the observers, the attacks and the seed of the attacks'
generators (its first seed); its task, deployments, schemes, sweeps and audit describe
a simulation and are not used. Each canary becomes one "deployment" of the report,
named after it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from leakage.errors import ConfigError
from leakage.quantify.observers import observer_views
from leakage.quantify.report import Report, RunCounts
from leakage.quantify.runner import Job, assemble_report
from leakage.quantify.scoring import ScoreRow, score_transcript
from leakage.quantify.spec import AttackSpec, DeploymentSize, DeploymentSpec, TaskSpec, load_spec
from leakage.recording import Recording, read_recording
from leakage.transcript import Transcript

__all__ = ["RECORDING_OBSERVERS", "RecordingSummary", "recording_spec", "score_recording"]

#: The observers a recording is scored as when no spec names them: those a recording can hold.
RECORDING_OBSERVERS: tuple[str, ...] = ("server", "participant", "coalition", "public")


@dataclass(frozen=True)
class RecordingSummary:
    """What the report says about the recording it scored."""

    folder: str
    name: str
    framework: Mapping[str, Any]
    scheme: str
    rounds: int
    clients: int
    canaries: tuple[int, ...]
    recorded: tuple[int, ...]
    read_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "folder": self.folder, "name": self.name, "framework": dict(self.framework), "scheme": self.scheme,
            "rounds": self.rounds, "clients": self.clients, "canaries": list(self.canaries),
            "recorded": list(self.recorded), "read_seconds": self.read_seconds,
        }


def recording_spec(
    recording: Recording, spec: DeploymentSpec | None = None, *, targets: Sequence[int] | None = None
) -> DeploymentSpec:
    """The spec a recording is scored under: its task and rule, one deployment per target canary.

    Observers, attacks and the seed come from ``spec`` (the built-in default's attacks
    and :data:`RECORDING_OBSERVERS` when ``None``); ``targets`` are the canaries scored
    (all of them when ``None``), in the order of the deployments.
    """
    base = spec if spec is not None else load_spec()
    observers = base.observers if spec is not None else RECORDING_OBSERVERS
    if "malicious_server" in observers:
        raise ConfigError(
            "spec.observers: malicious_server (threat = \"active\") plays deviations in the simulator; a recording "
            f"holds what a run's observers saw, so choose from: {', '.join((*RECORDING_OBSERVERS, 'eavesdropper'))}"
        )
    rule, task = recording.rule, recording.task
    targets = tuple(recording.canaries if targets is None else targets)
    n_clients = recording.transcript.settings["n_clients"]
    return DeploymentSpec(
        name=f"recording: {recording.name}",
        task=TaskSpec(
            dataset=task.dataset, dataset_options=dict(task.dataset_options), model=task.model,
            model_options=dict(task.model_options), algorithm=rule.algorithm, local_epochs=rule.local_epochs,
            batch_size=rule.batch_size, lr=rule.lr, rounds=len(recording.transcript.rounds), loss=rule.loss,
            test_fraction=0.0,
        ),
        deployments=tuple(DeploymentSize(f"canary client {c}", n_clients) for c in targets),
        schemes=(recording.scheme,),
        observers=tuple(observers),
        target=targets[0],
        attacks=tuple(AttackSpec(a.name, dict(a.options)) for a in base.attacks),
        audit=None,
        seeds=base.seeds[:1],
        plugins=base.plugins,
    )


def score_recording(
    path: str | os.PathLike[str],
    spec: DeploymentSpec | None = None,
    *,
    targets: Sequence[int] | None = None,
) -> Report:
    """Score the recording in ``path`` and return the report (``report.recording`` says what it read).

    Args:
        path: the recording's folder.
        spec: supplies observers, attacks and the seed (see the module docstring).
        targets: the canaries to score (all of them when ``None``).

    Raises:
        ConfigError: the recording is bad (one line naming the file and field), it names
            no canary, or a target is not one of its canaries.
    """
    started = time.perf_counter()
    recording = read_recording(path)
    read_seconds = time.perf_counter() - started
    if not recording.canaries:
        raise ConfigError(
            f"{Path(path) / 'clients'}: canary: the recording names no canary client (a recorded participant "
            "with \"canary\": true), so there is no ground truth to score against"
        )
    chosen = tuple(recording.canaries if targets is None else targets)
    unknown = [c for c in chosen if c not in recording.canaries]
    if unknown:
        raise ConfigError(f"targets must be canaries of the recording ({list(recording.canaries)}), got {unknown[0]}")
    scored_spec = recording_spec(recording, spec, targets=chosen)
    transcript, seed = recording.transcript, scored_spec.seeds[0]
    attacks = [(a.name, a.options) for a in scored_spec.attacks]
    held_out = None if recording.held_out is None else recording.dataset.subset(recording.held_out)
    truth_kept = {**transcript.truth.kept().to_dict(), "clients": len(recording.canaries)}
    data = {"dataset": recording.task.dataset, "training_samples": len(recording.dataset),
            "test_samples": 0 if held_out is None else len(held_out),
            "normalisation": transcript.settings.get("normalisation")}
    finished: list[tuple[Job, dict[str, Any]]] = []
    for target, deployment in zip(chosen, scored_spec.deployments, strict=True):
        attack_started = time.perf_counter()
        rows = score_transcript(
            transcript, recording.dataset, observers=scored_spec.observers, attacks=attacks, target=target, seed=seed,
            held_out=held_out,
        )
        rows = _say_what_is_missing(rows, transcript, scored_spec.observers, target)
        job = Job("score", scored_spec, deployment, recording.scheme, seed)
        finished.append((job, {
            "kind": "score", "simulate_seconds": 0.0, "attack_seconds": time.perf_counter() - attack_started,
            "rounds": len(transcript.rounds), "upload_bytes_per_client": None, "mpc_backend": None,
            "mpc_backend_description": None, "accountant_epsilon": None, "test_accuracy": None,
            "truth_kept": truth_kept, "data": data, "rows": rows,
        }))
    attack_seconds = sum(float(result["attack_seconds"]) for _, result in finished)
    timings = {"read": read_seconds, "simulate": 0.0, "attacks": attack_seconds, "audit": 0.0}
    report = assemble_report(
        scored_spec, finished, timings=timings, quick=False, backend="local",
        run=RunCounts(planned=len(finished), ran=len(finished)),
    )
    summary = RecordingSummary(
        folder=str(recording.folder), name=recording.name, framework=recording.framework, scheme=recording.scheme,
        rounds=len(transcript.rounds), clients=int(transcript.settings["n_clients"]), canaries=recording.canaries,
        recorded=recording.recorded, read_seconds=read_seconds,
    )
    total = time.perf_counter() - started
    return replace(
        report, recording=summary.to_dict(),
        timings={**report.timings, "wall": total, "total": total},
    )


def _say_what_is_missing(
    rows: Sequence[ScoreRow], transcript: Transcript, observers: Sequence[str], target: int
) -> list[ScoreRow]:
    """Rows of an observer the recording holds no view of say so, rather than what the attack lacked."""
    unseen = {kind for kind in observers if not observer_views(transcript, kind, target)[1]}
    return [
        replace(row, note=f"the recording holds no view of the {row.observer} ({row.observer_name})")
        if row.status == "not_applicable" and row.observer in unseen else row
        for row in rows
    ]
