"""Run a spec: independent jobs (deployment x scheme x seed, sweep points, audits), then one report.

Each :class:`Job` simulates one deployment under one scheme and scores it (or plays the
audit game on it) with nothing shared, so jobs run anywhere: in this process, a local
process pool, or as Ray tasks (:mod:`leakage.quantify.backends`). Job results are plain
data; :func:`assemble_report` turns them into a :class:`~leakage.quantify.report.Report`.

Before the clients get their data, ``task.test_fraction`` of the dataset is held out
(the same split for every scheme of a seed); the released model's accuracy on it is the
utility each scheme's leakage is weighed against.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from attacks import ATTACKS
from leakage.data import Dataset, load_dataset
from leakage.environment import environment_info
from leakage.errors import ConfigError
from leakage.quantify.audit import audit_transcript
from leakage.quantify.backends import execute_jobs, failure_error
from leakage.quantify.report import (
    AuditRow,
    Cost,
    FailedJob,
    Headline,
    JobKey,
    Report,
    ResultRow,
    RunCounts,
    sweep_curves,
)
from leakage.quantify.scoring import ScoreRow, score_transcript
from leakage.quantify.spec import (
    AuditSpec,
    DeploymentSize,
    DeploymentSpec,
    import_plugins,
    load_spec,
    plugin_roots,
)
from leakage.quantify.store import JobStore, spec_hash
from leakage.simulation import SimulationSettings, Simulator
from leakage.summary import accuracy

__all__ = ["Job", "assemble_report", "plan_jobs", "quick_spec", "run_job", "score", "split_test_data"]

JobKind = Literal["score", "audit"]
# A stream of its own for the held-out split, apart from every stream the simulator spawns.
_TEST_SPLIT_STREAM = 0x7E57


@dataclass(frozen=True)
class Job:
    """One independent unit of work: simulate ``deployment`` under ``scheme`` with ``seed``.

    ``sweep`` names the sweep a scoring job is a point of (it then runs only the spec's
    update-recovery attacks).
    """

    kind: JobKind
    spec: DeploymentSpec
    deployment: DeploymentSize
    scheme: str
    seed: int
    sweep: str | None = None
    plugin_roots: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A short description for progress bars and errors."""
        return f"{self.kind} {self.deployment.name}/{self.scheme}/seed {self.seed}"

    @property
    def key(self) -> JobKey:
        """The fields every row of this job carries in the report."""
        return JobKey(self.deployment.name, self.deployment.n_clients, self.scheme, self.seed, self.sweep)


def quick_spec(spec: DeploymentSpec) -> DeploymentSpec:
    """Return the ``--quick`` version of ``spec``: its first seed and a 16-trial audit."""
    audit = None if spec.audit is None else replace(spec.audit, trials=min(spec.audit.trials, 16))
    return replace(spec, seeds=spec.seeds[:1], audit=audit)


def plan_jobs(spec: DeploymentSpec) -> list[Job]:
    """Return every job of ``spec``: scoring runs, then sweep points, then audits."""
    roots = _roots(spec)
    jobs = [
        Job("score", spec, deployment, scheme, seed, plugin_roots=roots)
        for seed in spec.seeds
        for deployment in spec.deployments
        for scheme in spec.schemes
    ]
    jobs += [
        Job("score", spec, deployment, sweep.scheme, seed, sweep.name, roots)
        for seed in spec.seeds
        for sweep in spec.sweeps
        for deployment in sweep.deployments()
    ]
    audit = spec.audit
    if audit is not None:
        audited = [d for d in spec.deployments if audit.deployments is None or d.name in audit.deployments]
        jobs += [
            Job("audit", spec, d, scheme, seed, plugin_roots=roots)
            for seed in spec.seeds for d in audited for scheme in spec.schemes
        ]
    return jobs


def _roots(spec: DeploymentSpec) -> tuple[str, ...]:
    """The ``sys.path`` folders a worker needs: the plugins', the spec's ``python_path`` and the model module's."""
    from leakage.models import is_import_path

    modules = list(spec.plugins)
    model = spec.task.model
    if isinstance(model, str) and is_import_path(model):
        modules.append(model.partition(":")[0])
    roots = [*spec.task.python_path, *plugin_roots(modules)]
    return tuple(dict.fromkeys(roots))


def split_test_data(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out ``fraction`` of ``dataset`` for testing: ``(training data, test data or None)``.

    The split depends on ``seed`` only, so every scheme of a seed trains on the same data.

    >>> from leakage import load_dataset
    >>> train, test = split_test_data(load_dataset("digits"), 0.2, seed=0)
    >>> len(train), len(test)
    (1438, 359)
    """
    if fraction == 0:
        return dataset, None
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_TEST_SPLIT_STREAM,)))
    order = torch.from_numpy(rng.permutation(len(dataset)))
    held_out = int(round(fraction * len(dataset)))
    train, test = order[held_out:].sort().values, order[:held_out].sort().values
    return dataset.subset(train), dataset.subset(test)


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
    import_plugins(spec.plugins, job.plugin_roots)  # a fresh worker knows only what the package registers
    dataset, test = split_test_data(
        load_dataset(task.dataset, **task.dataset_options), task.test_fraction, job.seed
    )
    audit = job.kind == "audit"
    settings = _settings(spec, job, spec.audit if audit else None)
    started = time.perf_counter()
    model = None if isinstance(task.model, str) else task.model  # a model object given from Python
    transcript = Simulator(settings, dataset=dataset, model=model).run()
    simulate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result: dict[str, Any] = {
        "kind": job.kind,
        "simulate_seconds": simulate_seconds,
        "rounds": len(transcript.rounds),
        "upload_bytes_per_client": _mean_metric(transcript.rounds, "upload_bytes_per_client")
        or _wire_bytes_per_client(transcript.rounds),
        "mpc_backend": transcript.rounds[-1].public.get("mpc_backend"),
        "mpc_backend_description": transcript.rounds[-1].public.get("mpc_backend_description"),
        "accountant_epsilon": transcript.rounds[-1].public.get("epsilon"),
        "test_accuracy": None if test is None else accuracy(transcript.build_model().eval(), test),
        "truth_kept": _truth_kept(transcript),
        "data": {
            "dataset": task.dataset, "training_samples": len(dataset), "test_samples": 0 if test is None else len(test),
            "normalisation": transcript.settings.get("normalisation"),
        },
    }
    attacks = [(a.name, a.options) for a in spec.attacks]
    if audit:
        assert spec.audit is not None
        audits = audit_transcript(  # the "target" partition makes client 0 the two-record target
            transcript, dataset, observers=spec.observers, target=0,
            confidence=spec.audit.confidence, delta=spec.audit.delta, attacks=attacks,
        )
        result["audits"] = [a.to_dict() for a in audits]
    else:
        if job.sweep is not None:  # a sweep draws the estimate's curve: update recovery only
            attacks = [(name, options) for name, options in attacks if ATTACKS.get(name).produces == "update_estimate"]
        rows = score_transcript(
            transcript, dataset, observers=spec.observers, target=spec.target, seed=job.seed, attacks=attacks,
            held_out=test,
        )
        result["rows"] = rows
    result["attack_seconds"] = time.perf_counter() - started
    return result


def _settings(spec: DeploymentSpec, job: Job, audit: AuditSpec | None) -> SimulationSettings:
    task, deployment = spec.task, job.deployment
    options: dict[str, Any] = {
        "dataset": task.dataset, "dataset_options": task.dataset_options, "model": task.model_label,
        "checkpoint": task.checkpoint,
        "model_options": task.model_options, "partition": task.partition, "partition_options": task.partition_options,
        "algorithm": task.algorithm, "local_epochs": task.local_epochs, "batch_size": task.batch_size, "lr": task.lr,
        "rounds": task.rounds, "loss": task.loss, "device": task.device,
    }
    if audit is not None:  # each round is one trial of the game: the target draws one of its two records
        options.update(
            algorithm="fedsgd", local_epochs=1, batch_size=1, rounds=audit.trials, partition="target",
            partition_options={"target_size": 2},
        )
    # Scoring reads the truth of one client only (the audit's two-record target is client 0),
    # so by default the transcript keeps no one else's per-round updates.
    target = 0 if audit is not None else spec.target
    truth: dict[str, Any] = {"record_truth": "targets", "truth_clients": (target,)}
    if task.record_truth == "all":
        truth = {"record_truth": "all"}
    return SimulationSettings(
        n_clients=deployment.n_clients, clients_per_round=deployment.clients_per_round, dropout=deployment.dropout,
        scheme=job.scheme, scheme_options=dict(spec.scheme_options.get(job.scheme, {})), seed=job.seed,
        **truth, **options,
    )


def _truth_kept(transcript: Any) -> dict[str, Any]:
    """How much per-round ground truth the run held (``record_truth``), for the report."""
    kept = transcript.truth.kept().to_dict()
    return {**kept, "clients": len(kept["clients"])}


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
    spec: DeploymentSpec,
    finished: Sequence[tuple[Job, Mapping[str, Any]]],
    *,
    timings: Mapping[str, float],
    quick: bool,
    backend: str,
    failures: Sequence[FailedJob] = (),
    run: RunCounts | None = None,
) -> Report:
    """Return the :class:`Report` of a run from its finished ``(job, run_job(job))`` pairs, in plan order."""
    rows: list[ResultRow] = []
    audits: list[AuditRow] = []
    scored: list[tuple[Job, Mapping[str, Any]]] = []
    for job, result in finished:
        if result["kind"] == "audit":
            audits += [AuditRow(job.key, audit) for audit in result["audits"]]
            continue
        rows += [ResultRow(job.key, row) for row in result["rows"]]
        scored.append((job, result))
    headlines = _headlines([r for r in rows if r.key.sweep is None], spec, failures)
    worst = {(h.deployment, h.scheme): h.leakage for h in headlines}
    costs = [
        Cost(
            job.key, result["simulate_seconds"], result["rounds"], result["upload_bytes_per_client"],
            result["mpc_backend"], result["mpc_backend_description"], result["test_accuracy"],
            (worst.get((job.deployment.name, job.scheme)) or 0.0) if job.sweep is None else _worst(rows, job.key),
            result.get("truth_kept"), result.get("data"),
        )
        for job, result in scored
    ]
    environment = environment_info()
    return Report(
        spec=spec,
        quick=quick,
        backend=backend,
        tool={"name": "leakage", "version": str(environment.get("leakage", "unknown"))},
        environment=environment,
        timings=dict(timings),
        deployments=tuple(
            {"name": d.name, "n_clients": d.n_clients, "clients_per_round": d.clients_per_round or d.n_clients}
            for d in spec.deployments
        ),
        results=tuple(rows),
        headlines=tuple(headlines),
        audits=tuple(audits),
        costs=tuple(costs),
        sweeps=sweep_curves(spec, rows, costs),
        failures=tuple(failures),
        run=run,
    )


def _worst(rows: Sequence[ResultRow], key: JobKey) -> float:
    return max((r.row.leakage for r in rows if r.key == key), default=0.0)


def _headlines(rows: Sequence[ResultRow], spec: DeploymentSpec, failures: Sequence[FailedJob]) -> list[Headline]:
    """Per deployment x scheme, the worst case over observers, attacks and seeds (mean over seeds first).

    A cell whose every scoring job failed is a ``"failed"`` headline; cells come in the
    spec's order.
    """
    grouped: dict[tuple[str, str, str, str], list[tuple[JobKey, ScoreRow]]] = {}
    for result in rows:
        key, row = result.key, result.row
        grouped.setdefault((key.deployment, key.scheme, row.observer, row.attack), []).append((key, row))
    best: dict[tuple[str, str], Headline] = {}
    for (deployment, scheme, observer, attack), group in grouped.items():
        leakage = sum(r.leakage for _, r in group) / len(group)
        value = sum(r.value for _, r in group) / len(group)
        pair = (deployment, scheme)
        applies = any(r.status == "ok" for _, r in group)
        current = best.get(pair)
        if current is None or (leakage, applies) > (current.leakage or 0.0, current.status == "ok"):
            best[pair] = Headline(
                deployment, group[0][0].n_clients, scheme, leakage, observer, attack, group[0][1].metric, value,
                "ok" if applies else "not_applicable",
            )
    for failure in failures:
        key = failure.key
        if failure.kind == "score" and key.sweep is None and (key.deployment, key.scheme) not in best:
            best[(key.deployment, key.scheme)] = Headline(
                key.deployment, key.n_clients, key.scheme, None, "", "", "", None, "failed"
            )
    order = [(d.name, scheme) for d in spec.deployments for scheme in spec.schemes]
    return [best[pair] for pair in order if pair in best]


def score(
    spec: DeploymentSpec | None = None,
    *,
    quick: bool = False,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    show_progress: bool = False,
    retries: int = 2,
    keep_going: bool = False,
    store: JobStore | None = None,
) -> Report:
    """Run every job of ``spec`` (the built-in default when ``None``) and return its :class:`Report`.

    Args:
        spec: a validated spec (:func:`~leakage.quantify.spec.load_spec`).
        quick: first seed only and a 16-trial audit.
        workers: jobs run side by side.
        backend: ``"local"`` or ``"ray"``.
        address: a Ray cluster address.
        show_progress: show a progress bar over jobs.
        retries: how many more times a job whose worker died runs again on a fresh one.
        keep_going: run every job even when some fail, and report the failed cells
            instead of raising.
        store: where finished jobs are kept as they complete (opened for the effective
            spec, ``quick`` applied); jobs it already holds are not run again.

    Raises:
        ConfigError: a bad backend, worker count or address, or a store of another spec.
        Exception: jobs failed after their retries (without ``keep_going``): the first
            failure as ``job <label> failed: ...`` of its own type where it can be rebuilt
            (else ``RuntimeError``), every other failed job as a note (``add_note``); the
            finished jobs are in ``store``.
        KeyboardInterrupt: interrupted; the workers are stopped and finished jobs kept.
    """
    spec = load_spec() if spec is None else spec
    if quick:
        spec = quick_spec(spec)
    if store is not None and store.spec_hash != spec_hash(spec):
        raise ConfigError(f"the job store in {store.folder} belongs to another spec")
    started = time.perf_counter()
    jobs = plan_jobs(spec)
    results: dict[int, Mapping[str, Any]] = {}
    if store is not None:
        for index, job in enumerate(jobs):
            kept = store.load(job)
            if kept is not None:
                results[index] = kept
    todo = [index for index in range(len(jobs)) if index not in results]

    def keep(position: int, result: dict[str, Any]) -> None:
        if store is not None:
            store.save(jobs[todo[position]], result)

    outcome = execute_jobs(
        run_job, [jobs[index] for index in todo], backend=backend, workers=workers, address=address,
        retries=retries, stop_on_failure=not keep_going, on_result=keep, show_progress=show_progress,
        describe=lambda job: job.label,
    )
    results.update({todo[position]: result for position, result in outcome.results.items()})
    failures = [
        FailedJob(jobs[todo[f.index]].key, jobs[todo[f.index]].kind, f.kind, f.reason, f.attempts)
        for f in outcome.failures
    ]
    if failures and not keep_going:
        # the first failure keeps its type (bad input stays a ValueError); the others ride along as notes
        errors = [failure_error(failure) for failure in outcome.failures]
        for other in errors[1:]:
            errors[0].add_note(str(other))
        raise errors[0]
    assembled = time.perf_counter()
    finished = [(jobs[index], results[index]) for index in sorted(results)]
    scoring = [r for _, r in finished if r["kind"] == "score"]
    audits = [r for _, r in finished if r["kind"] == "audit"]
    timings = {
        "simulate": sum(r["simulate_seconds"] for r in scoring),
        "attacks": sum(r["attack_seconds"] for r in scoring),
        "audit": sum(r["simulate_seconds"] + r["attack_seconds"] for r in audits),
        "wall": assembled - started,
    }
    counts = RunCounts(
        planned=len(jobs), resumed=len(jobs) - len(todo), ran=len(outcome.results) + len(outcome.failures),
        retried=len(outcome.retried), failed=len(failures),
    )
    report = assemble_report(
        spec, finished, timings=timings, quick=quick, backend=backend, failures=failures, run=counts
    )
    return replace(report, timings={**report.timings, "total": time.perf_counter() - started})
