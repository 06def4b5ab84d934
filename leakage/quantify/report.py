"""The typed result of ``leakage score``: one :class:`Report`, written as JSON, HTML and CSV.

The report owns its schema version; ``report.json`` is :meth:`Report.to_dict`, the HTML
page is rendered from that same data (:mod:`leakage.report`), and ``report.csv`` holds
every scored row, one line each, with the same numbers as the JSON.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from leakage.files import write_atomically
from leakage.quantify.scoring import ScoreRow
from leakage.quantify.spec import DeploymentSpec

__all__ = [
    "CSV_COLUMNS",
    "HIDES_AT_MOST",
    "REPORT_SCHEMA_VERSION",
    "AuditRow",
    "Cost",
    "FailedJob",
    "Headline",
    "JobKey",
    "Report",
    "ReportFiles",
    "ResultRow",
    "RunCounts",
    "SweepCurve",
    "SweepPoint",
    "sweep_curves",
]

REPORT_SCHEMA_VERSION = 1
#: A sweep point "hides" the target's update when its leakage is at most this.
HIDES_AT_MOST = 0.25
#: The fixed columns of ``report.csv``; every metric of any row follows as ``metrics.<name>``.
CSV_COLUMNS: tuple[str, ...] = (
    "deployment", "n_clients", "scheme", "seed", "sweep", "observer", "observer_name", "attack", "status",
    "metric", "value", "baseline", "reference", "leakage", "note",
)


@dataclass(frozen=True)
class JobKey:
    """Which run a row belongs to: deployment, its size, scheme and seed (and the sweep, if any)."""

    deployment: str
    n_clients: int
    scheme: str
    seed: int
    sweep: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"deployment": self.deployment, "n_clients": self.n_clients, "scheme": self.scheme,
                "seed": self.seed, "sweep": self.sweep}


@dataclass(frozen=True)
class ResultRow:
    """One scored observer x attack of one run."""

    key: JobKey
    row: ScoreRow

    def to_dict(self) -> dict[str, Any]:
        """The row's JSON: the run's fields, then the score's."""
        return {**self.key.to_dict(), **self.row.to_dict()}


@dataclass(frozen=True)
class AuditRow:
    """The distinguishing game of one observer on one run (``result`` is ``AuditResult.to_dict()``)."""

    key: JobKey
    result: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The run's fields, then the game's."""
        return {**self.key.to_dict(), **dict(self.result)}


@dataclass(frozen=True)
class FailedJob:
    """A job with no result: it raised, or its worker died on every attempt."""

    key: JobKey
    kind: str            # the job's kind: "score" or "audit"
    failure: str         # "error" (raised; not retried) or "worker_died"
    reason: str
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        """The run's fields, then why it failed."""
        return {**self.key.to_dict(), "kind": self.kind, "failure": self.failure, "reason": self.reason,
                "attempts": self.attempts}


@dataclass(frozen=True)
class RunCounts:
    """How the jobs of a run were obtained: planned, kept from an earlier run, run now, retried, failed."""

    planned: int
    resumed: int = 0
    ran: int = 0
    retried: int = 0
    failed: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON-ready counts."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Headline:
    """A deployment x scheme's worst case over observers, attacks and seeds (mean over seeds first).

    ``status`` is ``"ok"``, ``"not_applicable"`` (no attack applies), or ``"failed"``
    (every scoring job of the cell failed: ``leakage`` and ``value`` are then ``None``).
    """

    deployment: str
    n_clients: int
    scheme: str
    leakage: float | None
    observer: str
    attack: str
    metric: str
    value: float | None
    status: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Cost:
    """What a run cost and what the released model is worth (privacy against utility)."""

    key: JobKey
    seconds: float
    rounds: int
    upload_bytes_per_client: float | None
    mpc_backend: str | None
    mpc_backend_description: str | None
    test_accuracy: float | None
    leakage: float
    truth_kept: Mapping[str, Any] | None = None
    data: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run's fields, then the cost's; ``truth_kept`` says how much ground truth the run held,
        ``data`` what the clients trained on and its normalisation (computed from the data)."""
        plain = {
            **self.key.to_dict(), "seconds": self.seconds, "rounds": self.rounds,
            "upload_bytes_per_client": self.upload_bytes_per_client, "mpc_backend": self.mpc_backend,
            "mpc_backend_description": self.mpc_backend_description, "test_accuracy": self.test_accuracy,
            "leakage": self.leakage,
        }
        if self.truth_kept is not None:
            plain["truth_kept"] = dict(self.truth_kept)
        if self.data is not None:
            plain["data"] = dict(self.data)
        return plain


@dataclass(frozen=True)
class SweepPoint:
    """One size of a sweep for one observer: its best update-recovery attack, means over seeds."""

    n_clients: int
    clients_per_round: int
    attack: str
    leakage: float
    value: float
    baseline: float
    test_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class SweepCurve:
    """Leakage against the number of clients, for one sweep and one observer.

    ``hides_from`` is the smallest size from which every point's leakage is at most
    :data:`HIDES_AT_MOST` (the observer's estimate is no better than the released model's
    direction), or ``None`` when the largest size still leaks more.
    """

    name: str
    scheme: str
    observer: str
    metric: str
    points: tuple[SweepPoint, ...]

    @property
    def hides_from(self) -> int | None:
        """The first size from which the observer's estimate stays at the released model's level."""
        first = None
        for point in reversed(self.points):
            if point.leakage > HIDES_AT_MOST:
                break
            first = point.n_clients
        return first

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``hides_from``."""
        return {
            "name": self.name, "scheme": self.scheme, "observer": self.observer, "metric": self.metric,
            "attack": ",".join(sorted({p.attack for p in self.points})),
            "points": [p.to_dict() for p in self.points], "hides_from": self.hides_from,
        }


@dataclass(frozen=True)
class ReportFiles:
    """Where :meth:`Report.write` put the report."""

    json: Path
    html: Path
    csv: Path


@dataclass(frozen=True)
class Report:
    """Everything a ``leakage score`` run measured.

    Attributes:
        spec: the validated spec that ran.
        quick: whether ``--quick`` trimmed it.
        backend: where the jobs ran.
        tool, environment: package versions and machine facts.
        timings: seconds spent simulating, attacking, auditing, in all.
        results: every scored observer x attack of every run (sweep runs included).
        headlines: each deployment x scheme's worst case (sweeps excluded).
        audits: the distinguishing games.
        costs: per run, its cost, the released model's test accuracy and its worst leakage.
        sweeps: leakage against the number of clients, per sweep and observer.
        failures: jobs with no result (``--keep-going``); their cells are marked failed.
        run: how many jobs were planned, kept from an earlier run, run, retried, failed.
        recording: where the run came from when it was a recording of a real run
            (:mod:`leakage.quantify.recording`), ``None`` for a simulation.
    """

    schema_version: ClassVar[int] = REPORT_SCHEMA_VERSION

    spec: DeploymentSpec
    quick: bool
    backend: str
    tool: Mapping[str, str]
    environment: Mapping[str, Any]
    timings: Mapping[str, float]
    results: tuple[ResultRow, ...] = ()
    headlines: tuple[Headline, ...] = ()
    audits: tuple[AuditRow, ...] = ()
    costs: tuple[Cost, ...] = ()
    sweeps: tuple[SweepCurve, ...] = ()
    deployments: tuple[Mapping[str, Any], ...] = field(default=())
    failures: tuple[FailedJob, ...] = ()
    run: RunCounts | None = None
    recording: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``report.json`` structure."""
        return {
            "schema_version": self.schema_version,
            "tool": dict(self.tool),
            "spec": self.spec.to_dict(),
            "quick": self.quick,
            "backend": self.backend,
            "environment": dict(self.environment),
            "timings": dict(self.timings),
            "deployments": [dict(d) for d in self.deployments],
            "results": [row.to_dict() for row in self.results],
            "headlines": [h.to_dict() for h in self.headlines],
            "audits": [a.to_dict() for a in self.audits],
            "costs": [c.to_dict() for c in self.costs],
            "sweeps": [s.to_dict() for s in self.sweeps],
            "failures": [f.to_dict() for f in self.failures],
            "run": None if self.run is None else self.run.to_dict(),
            "source": "simulation" if self.recording is None else "recording",
            "recording": None if self.recording is None else dict(self.recording),
        }

    def to_json(self) -> str:
        """``report.json``'s text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_csv(self) -> str:
        """``report.csv``'s text: one line per scored row, the metrics of every row as extra columns.

        Numbers are written with ``repr`` precision, so the CSV reads back to the JSON's values.
        """
        metric_names = sorted({name for result in self.results for name in result.row.metrics})
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*CSV_COLUMNS, *(f"metrics.{name}" for name in metric_names)])
        for result in self.results:
            data = result.to_dict()
            writer.writerow([
                *(_cell(data[column]) for column in CSV_COLUMNS),
                *(_cell(result.row.metrics.get(name)) for name in metric_names),
            ])
        return buffer.getvalue()

    def write(self, folder: Path) -> ReportFiles:
        """Write ``report.json``, ``report.csv`` and ``report.html`` into ``folder`` (created), each atomically."""
        from leakage.report import render_html_report

        folder.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        html = render_html_report(data)  # rendered before anything is written: a failure leaves no file
        files = ReportFiles(folder / "report.json", folder / "report.html", folder / "report.csv")
        write_atomically(files.json, json.dumps(data, indent=2) + "\n")
        write_atomically(files.csv, self.to_csv())
        write_atomically(files.html, html)
        return files


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def sweep_curves(spec: DeploymentSpec, results: Sequence[ResultRow], costs: Sequence[Cost]) -> tuple[SweepCurve, ...]:
    """Per sweep and observer, the best update-recovery leakage at each size (means over seeds)."""
    accuracy: dict[tuple[str, int], list[float]] = {}
    for cost in costs:
        if cost.key.sweep is not None and cost.test_accuracy is not None:
            accuracy.setdefault((cost.key.sweep, cost.key.n_clients), []).append(cost.test_accuracy)
    curves = []
    for sweep in spec.sweeps:
        mine = [r for r in results if r.key.sweep == sweep.name and r.row.metric == "update_cosine"]
        for observer in [o for o in spec.observers if any(r.row.observer == o for r in mine)]:
            points = []
            for size in sweep.n_clients:
                grouped: dict[str, list[ScoreRow]] = {}
                for result in mine:
                    if result.row.observer == observer and result.key.n_clients == size:
                        grouped.setdefault(result.row.attack, []).append(result.row)
                if not grouped:
                    continue
                attack, rows = max(grouped.items(), key=lambda item: _mean(r.leakage for r in item[1]))
                accuracies = accuracy.get((sweep.name, size))
                points.append(SweepPoint(
                    size, size, attack, _mean(r.leakage for r in rows), _mean(r.value for r in rows),
                    _mean(r.baseline for r in rows), _mean(accuracies) if accuracies else None,
                ))
            curves.append(SweepCurve(sweep.name, sweep.scheme, observer, "update_cosine", tuple(points)))
    return tuple(curves)


def _mean(values: Any) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0
