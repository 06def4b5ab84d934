"""``score``: run a spec end to end and return its report (the work behind ``leakage score``)."""

from __future__ import annotations

import time
from typing import Any

from leakage.quantify.backends import run_jobs
from leakage.quantify.runner import assemble_report, plan_jobs, quick_spec, run_job
from leakage.quantify.spec import DeploymentSpec, load_spec

__all__ = ["score"]


def score(
    spec: DeploymentSpec | None = None,
    *,
    quick: bool = False,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Run every job of ``spec`` (the built-in default when ``None``) and return ``report.json`` data.

    Args:
        spec: a validated spec (:func:`~leakage.quantify.spec.load_spec`).
        quick: first seed only and a 16-trial audit.
        workers: jobs run side by side.
        backend: ``"local"`` or ``"ray"``.
        address: a Ray cluster address.
        show_progress: show a progress bar over jobs.

    Raises:
        ConfigError: a bad backend, worker count or address.
    """
    spec = load_spec() if spec is None else spec
    if quick:
        spec = quick_spec(spec)
    started = time.perf_counter()
    jobs = plan_jobs(spec)
    results = run_jobs(
        run_job, jobs, backend=backend, workers=workers, address=address, show_progress=show_progress,
        describe=lambda job: job.label,
    )
    assembled = time.perf_counter()
    scoring = [r for r in results if r["kind"] == "score"]
    audits = [r for r in results if r["kind"] == "audit"]
    timings = {
        "simulate": sum(r["simulate_seconds"] for r in scoring),
        "attacks": sum(r["attack_seconds"] for r in scoring),
        "audit": sum(r["simulate_seconds"] + r["attack_seconds"] for r in audits),
        "wall": assembled - started,
    }
    report = assemble_report(spec, results, timings=timings, quick=quick, backend=backend)
    report["timings"]["total"] = time.perf_counter() - started
    return report
