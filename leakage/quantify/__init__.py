"""Leakage quantification: score a deployment's schemes against the MPC baseline.

``score(spec)`` runs every job of a :class:`DeploymentSpec` (simulate, attack, audit)
and returns the ``report.json`` structure: per scheme x observer x attack the raw metric
against ground truth and the leakage normalised to [0, 1] (0: no more than MPC training
reveals, only the final model; 1: as much as from the target's update in the clear), each
scheme's worst case, and the distinguishing-game audit with its empirical epsilon.
"""

from leakage.quantify.audit import (
    AuditResult,
    audit_transcript,
    clopper_pearson,
    epsilon_lower_bound,
)
from leakage.quantify.backends import BACKENDS, Backend, run_jobs
from leakage.quantify.estimates import (
    TargetEstimate,
    final_model_estimates,
    observer_views,
    target_estimates,
)
from leakage.quantify.runner import (
    REPORT_SCHEMA_VERSION,
    Job,
    assemble_report,
    plan_jobs,
    quick_spec,
    run_job,
)
from leakage.quantify.score import score
from leakage.quantify.scoring import (
    RECONSTRUCTION_ATTACKS,
    UPDATE_ATTACKS,
    ScoreRow,
    normalised_leakage,
    score_transcript,
)
from leakage.quantify.spec import (
    OBSERVER_KINDS,
    AttackSpec,
    AuditSpec,
    DeploymentSize,
    DeploymentSpec,
    ObserverKind,
    TaskSpec,
    default_spec_path,
    load_spec,
    parse_spec,
)

__all__ = [
    "BACKENDS",
    "OBSERVER_KINDS",
    "RECONSTRUCTION_ATTACKS",
    "REPORT_SCHEMA_VERSION",
    "UPDATE_ATTACKS",
    "AttackSpec",
    "AuditResult",
    "AuditSpec",
    "Backend",
    "DeploymentSize",
    "DeploymentSpec",
    "Job",
    "ObserverKind",
    "ScoreRow",
    "TargetEstimate",
    "TaskSpec",
    "assemble_report",
    "audit_transcript",
    "clopper_pearson",
    "default_spec_path",
    "epsilon_lower_bound",
    "final_model_estimates",
    "load_spec",
    "normalised_leakage",
    "observer_views",
    "parse_spec",
    "plan_jobs",
    "quick_spec",
    "run_job",
    "run_jobs",
    "score",
    "score_transcript",
    "target_estimates",
]
