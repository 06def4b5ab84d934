"""Leakage quantification: score a deployment's schemes against the MPC baseline.

``score(spec)`` runs every job of a :class:`DeploymentSpec` (simulate, attack, audit)
and returns a :class:`Report`: per scheme x observer x attack the raw metric against
ground truth and the leakage normalised to [0, 1] (0: no more than MPC training
reveals, only the final model; 1: as much as from the target's update in the clear), each
scheme's worst case, leakage against the number of clients for each sweep, and the
distinguishing-game audit with its empirical epsilon. Attacks are scored by what they
declare they produce (:data:`SCORERS`), never by name.
"""

from leakage.quantify.audit import (
    AuditResult,
    audit_transcript,
    clopper_pearson,
    epsilon_lower_bound,
)
from leakage.quantify.backends import BACKENDS, Backend, JobFailure, JobRun, execute_jobs, failure_error, run_jobs
from leakage.quantify.observers import ROLES, observer_views
from leakage.quantify.preflight import DEFAULT_TIME_LIMIT_SECONDS, Estimate, preflight
from leakage.quantify.report import (
    CSV_COLUMNS,
    HIDES_AT_MOST,
    REPORT_SCHEMA_VERSION,
    Report,
    ReportFiles,
    SweepCurve,
    SweepPoint,
)
from leakage.quantify.runner import (
    Job,
    assemble_report,
    plan_jobs,
    quick_spec,
    run_job,
    score,
    split_test_data,
)
from leakage.quantify.scoring import (
    SCORERS,
    ObserverScoring,
    ReconstructionScorer,
    Scorer,
    ScoreRow,
    ScoringTask,
    UpdateScorer,
    estimates_of,
    normalised_leakage,
    score_transcript,
    scored_products,
)
from leakage.quantify.spec import (
    OBSERVER_KINDS,
    SWEEP_SIZES,
    AttackSpec,
    AuditSpec,
    DeploymentSize,
    DeploymentSpec,
    ObserverKind,
    SweepSpec,
    TaskSpec,
    default_spec_path,
    import_plugins,
    load_spec,
    parse_spec,
)
from leakage.quantify.store import STORE_FORMAT, JobStore, spec_hash

__all__ = [
    "BACKENDS",
    "CSV_COLUMNS",
    "DEFAULT_TIME_LIMIT_SECONDS",
    "HIDES_AT_MOST",
    "OBSERVER_KINDS",
    "REPORT_SCHEMA_VERSION",
    "ROLES",
    "SCORERS",
    "STORE_FORMAT",
    "SWEEP_SIZES",
    "AttackSpec",
    "AuditResult",
    "AuditSpec",
    "Backend",
    "DeploymentSize",
    "DeploymentSpec",
    "Estimate",
    "Job",
    "JobFailure",
    "JobRun",
    "JobStore",
    "ObserverKind",
    "ObserverScoring",
    "ReconstructionScorer",
    "Report",
    "ReportFiles",
    "ScoreRow",
    "Scorer",
    "ScoringTask",
    "SweepCurve",
    "SweepPoint",
    "SweepSpec",
    "TaskSpec",
    "UpdateScorer",
    "assemble_report",
    "audit_transcript",
    "clopper_pearson",
    "default_spec_path",
    "epsilon_lower_bound",
    "estimates_of",
    "execute_jobs",
    "failure_error",
    "import_plugins",
    "load_spec",
    "normalised_leakage",
    "observer_views",
    "parse_spec",
    "plan_jobs",
    "preflight",
    "quick_spec",
    "run_job",
    "run_jobs",
    "score",
    "score_transcript",
    "scored_products",
    "spec_hash",
    "split_test_data",
]
