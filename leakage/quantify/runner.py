"""Run a spec: independent jobs (deployment x scheme x seed, plus audits), then one report.

Each :class:`Job` simulates one deployment under one scheme and scores it (or plays the
audit game on it) with nothing shared, so jobs run anywhere: in this process, a local
process pool, or as Ray tasks (:mod:`leakage.quantify.backends`). Job results are plain
data; :func:`assemble_report` turns them into the versioned ``report.json`` structure.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch

from leakage.data import load_dataset
from leakage.environment import environment_info
from leakage.quantify.audit import audit_transcript
from leakage.quantify.scoring import score_transcript
from leakage.quantify.spec import AuditSpec, DeploymentSize, DeploymentSpec
from leakage.simulation import SimulationSettings, Simulator

__all__ = ["REPORT_SCHEMA_VERSION", "Job", "assemble_report", "plan_jobs", "quick_spec", "run_job"]

REPORT_SCHEMA_VERSION = 1
JobKind = Literal["score", "audit"]


@dataclass(frozen=True)
class Job:
    """One independent unit of work: simulate ``deployment`` under ``scheme`` with ``seed``."""

    kind: JobKind
    spec: DeploymentSpec
    deployment: DeploymentSize
    scheme: str
    seed: int

    @property
    def label(self) -> str:
        """A short description for progress bars and errors."""
        return f"{self.kind} {self.deployment.name}/{self.scheme}/seed {self.seed}"


def quick_spec(spec: DeploymentSpec) -> DeploymentSpec:
    """Return the ``--quick`` version of ``spec``: its first seed and a 16-trial audit."""
    audit = None if spec.audit is None else replace(spec.audit, trials=min(spec.audit.trials, 16))
    return replace(spec, seeds=spec.seeds[:1], audit=audit)


def plan_jobs(spec: DeploymentSpec) -> list[Job]:
    """Return every job of ``spec``: scoring runs first, then audits (they take longest per job)."""
    jobs = [
        Job("score", spec, deployment, scheme, seed)
        for seed in spec.seeds
        for deployment in spec.deployments
        for scheme in spec.schemes
    ]
    audit = spec.audit
    if audit is not None:
        audited = [d for d in spec.deployments if audit.deployments is None or d.name in audit.deployments]
        jobs += [Job("audit", spec, d, scheme, seed) for seed in spec.seeds for d in audited for scheme in spec.schemes]
    return jobs


def run_job(job: Job) -> dict[str, Any]:
    """Run one job and return its results as plain data (picklable, JSON-ready)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # jobs run side by side; one thread each keeps timings stable
    try:
        return _run_job(job)
    finally:
        torch.set_num_threads(threads)


def _run_job(job: Job) -> dict[str, Any]:
    spec, task = job.spec, job.spec.task
    dataset = load_dataset(task.dataset, **task.dataset_options)
    audit = job.kind == "audit"
    settings = _settings(spec, job, spec.audit if audit else None)
    started = time.perf_counter()
    transcript = Simulator(settings, dataset=dataset).run()
    simulate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result: dict[str, Any] = {
        "kind": job.kind,
        "deployment": job.deployment.name,
        "n_clients": job.deployment.n_clients,
        "clients_per_round": job.deployment.clients_per_round or job.deployment.n_clients,
        "scheme": job.scheme,
        "seed": job.seed,
        "simulate_seconds": simulate_seconds,
        "rounds": len(transcript.rounds),
        "upload_bytes_per_client": _mean_metric(transcript.rounds, "upload_bytes_per_client")
        or _wire_bytes_per_client(transcript.rounds),
        "mpc_backend": transcript.rounds[-1].public.get("mpc_backend"),
        "accountant_epsilon": transcript.rounds[-1].public.get("epsilon"),
    }
    if audit:
        assert spec.audit is not None
        audits = audit_transcript(  # the "target" partition makes client 0 the two-record target
            transcript, dataset, observers=spec.observers, target=0,
            confidence=spec.audit.confidence, delta=spec.audit.delta,
        )
        result["audits"] = [a.to_dict() for a in audits]
    else:
        rows = score_transcript(
            transcript, dataset, observers=spec.observers, target=spec.target, seed=job.seed,
            attacks=[(a.name, a.options) for a in spec.attacks],
        )
        result["rows"] = [row.to_dict() for row in rows]
    result["attack_seconds"] = time.perf_counter() - started
    return result


def _settings(spec: DeploymentSpec, job: Job, audit: AuditSpec | None) -> SimulationSettings:
    task, deployment = spec.task, job.deployment
    options: dict[str, Any] = {
        "dataset": task.dataset, "dataset_options": task.dataset_options, "model": task.model,
        "model_options": task.model_options, "partition": task.partition, "partition_options": task.partition_options,
        "algorithm": task.algorithm, "local_epochs": task.local_epochs, "batch_size": task.batch_size, "lr": task.lr,
        "rounds": task.rounds, "loss": task.loss,
    }
    if audit is not None:  # each round is one trial of the game: the target draws one of its two records
        options.update(
            algorithm="fedsgd", local_epochs=1, batch_size=1, rounds=audit.trials, partition="target",
            partition_options={"target_size": 2},
        )
    return SimulationSettings(
        n_clients=deployment.n_clients, clients_per_round=deployment.clients_per_round, dropout=deployment.dropout,
        scheme=job.scheme, scheme_options=dict(spec.scheme_options.get(job.scheme, {})), seed=job.seed, **options,
    )


def _wire_bytes_per_client(rounds: Sequence[Any]) -> float | None:
    """Mean bytes per participant per round of what an eavesdropper saw cross the wire (``None``: nothing)."""
    totals = []
    for record in rounds:
        view = record.views.get("eavesdropper")
        if view is None or not view.received or not record.survivors:
            continue
        size = sum(
            len(message) if isinstance(message, bytes) else message.numel() * message.element_size()
            for message in view.received.values()
        )
        totals.append(size / len(record.survivors))
    return sum(totals) / len(totals) if totals else None


def _mean_metric(rounds: Sequence[Any], name: str) -> float | None:
    values = [float(r.metrics[name]) for r in rounds if name in r.metrics]
    return sum(values) / len(values) if values else None


def assemble_report(
    spec: DeploymentSpec, results: Sequence[Mapping[str, Any]], *, timings: Mapping[str, float], quick: bool, backend: str
) -> dict[str, Any]:
    """Return the ``report.json`` structure (schema version 1) of a finished run."""
    rows: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    costs: list[dict[str, Any]] = []
    for result in results:
        common = {key: result[key] for key in ("deployment", "n_clients", "scheme", "seed")}
        if result["kind"] == "audit":
            audits += [{**common, **audit} for audit in result["audits"]]
            continue
        rows += [{**common, **row} for row in result["rows"]]
        costs.append({
            **common,
            "seconds": result["simulate_seconds"],
            "rounds": result["rounds"],
            "upload_bytes_per_client": result["upload_bytes_per_client"],
            "mpc_backend": result["mpc_backend"],
        })
    headlines = _headlines(rows)
    worst = {(h["deployment"], h["scheme"]): h["leakage"] for h in headlines}
    for cost in costs:
        cost["leakage"] = worst.get((cost["deployment"], cost["scheme"]), 0.0)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "tool": {"name": "leakage", "version": environment_info().get("leakage", "unknown")},
        "spec": spec.to_dict(),
        "quick": quick,
        "backend": backend,
        "environment": environment_info(),
        "timings": dict(timings),
        "deployments": [
            {"name": d.name, "n_clients": d.n_clients, "clients_per_round": d.clients_per_round or d.n_clients}
            for d in spec.deployments
        ],
        "results": rows,
        "headlines": headlines,
        "audits": audits,
        "costs": costs,
    }


def _headlines(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per deployment x scheme, the worst case over observers, attacks and seeds (mean over seeds first)."""
    grouped: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["deployment"], row["scheme"], row["observer"], row["attack"]), []).append(row)
    best: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    for (deployment, scheme, observer, attack), group in grouped.items():
        leakage = sum(r["leakage"] for r in group) / len(group)
        value = sum(r["value"] for r in group) / len(group)
        pair = (deployment, scheme)
        if pair not in best:
            order.append(pair)
        applies = any(r["status"] == "ok" for r in group)
        current = best.get(pair)
        if current is None or (leakage, applies) > (current["leakage"], current["status"] == "ok"):
            best[pair] = {
                "deployment": deployment, "n_clients": group[0]["n_clients"], "scheme": scheme, "leakage": leakage,
                "observer": observer, "attack": attack, "metric": group[0]["metric"], "value": value,
                "status": "ok" if applies else "not_applicable",
            }
    return [best[pair] for pair in order]
