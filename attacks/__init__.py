"""Attacks on what federated-learning observers see.

Every attack has the same call: ``create_attack(name, **options).run(view_or_observation,
knowledge)`` returns an :class:`AttackResult` (reconstruction, labels, optimisation trace).

Gradient inversion: ``dlg`` (Zhu et al. 2019), ``idlg`` (Zhao et al. 2020),
``inverting_gradients`` (Geiping et al. 2020, batched restarts), ``analytic`` (exact
inversion of a fully connected first layer). Label recovery: :func:`recover_labels`.

Attacks on an observer's history of views (``create_attack(name).run(views, knowledge)``):
``round_difference`` (a participant or coalition subtracts its own update from the
model's change), ``disaggregation`` (a server splits secure aggregates into individual
updates across rounds of varying participation), ``property_inference`` (Melis et al.
2019: a classifier trained on shadow updates tells whether the target's data has a
property), ``binary_records`` (Li et al. 2019: a client's 0/1 training records from the
sufficient statistics of the Taylor-approximated logistic loss; its steps are public in
:mod:`attacks.binary_records`).
"""

from attacks.aggregate import AggregateAttack
from attacks.analytic import AnalyticInversion
from attacks.base import (
    ATTACKS,
    Attack,
    AttackBase,
    AttackProduct,
    AttackResult,
    Knowledge,
    Observation,
    ObservationKind,
    ViewerRole,
    create_attack,
)
from attacks.batch_norm import BatchStatisticsNorm, use_batch_statistics
from attacks.binary_records import BinaryRecordsAttack, BinaryRecordsResult
from attacks.disaggregation import (
    Disaggregation,
    DisaggregationAttack,
    DriftModel,
    disaggregate,
)
from attacks.dlg import DLGAttack, IDLGAttack
from attacks.history import (
    HistoryAttack,
    ObserverRole,
    RecoveredUpdate,
    UpdateEstimate,
    group_by_round,
)
from attacks.imprint import (
    ImprintAttack,
    ImprintBlock,
    RecoveredSamples,
    SampleMatch,
    match_samples,
    recover_from_imprint,
)
from attacks.inverting_gradients import InvertingGradientsAttack
from attacks.labels import LabelStrategy, recover_labels
from attacks.lira import LiRAAttack, lira_scores
from attacks.membership import LossThresholdAttack, MembershipAttack, MembershipScores
from attacks.model_inconsistency import dead_parameters
from attacks.objective import (
    cosine_distance,
    l2_distance,
    make_upload_function,
    observed_target,
    total_variation,
)
from attacks.plaintext import PlaintextAttack
from attacks.property_inference import (
    COMBINE_RULES,
    OthersPopulation,
    PropertyClassifier,
    PropertyInferenceAttack,
    PropertyInferenceResult,
    ScoreCombination,
    combine_round_scores,
)
from attacks.reference_membership import (
    REFERENCE_MODES,
    ReferenceMembershipAttack,
    ReferenceMode,
    ReferenceSignals,
    reference_memberships,
)
from attacks.reference_models import (
    MinibatchSchedule,
    initial_parameters,
    minibatch_schedule,
    reference_logits,
    scaled_logits,
    train_reference_models,
    true_class_probabilities,
)
from attacks.rmia import RMIAAttack, marginal_probabilities, rmia_scores
from attacks.round_difference import (
    RoundDifferenceAttack,
    own_weight,
    target_observations,
)
from attacks.shadow_training import ShadowUpdates, shadow_updates
from attacks.trap_weights import TrapWeightsAttack, install_trap_weights, recover_from_trap_weights

__all__ = [
    "BatchStatisticsNorm",
    "ATTACKS",
    "COMBINE_RULES",
    "AggregateAttack",
    "AnalyticInversion",
    "Attack",
    "AttackBase",
    "AttackProduct",
    "AttackResult",
    "BinaryRecordsAttack",
    "BinaryRecordsResult",
    "DLGAttack",
    "Disaggregation",
    "DisaggregationAttack",
    "DriftModel",
    "HistoryAttack",
    "IDLGAttack",
    "ImprintAttack",
    "ImprintBlock",
    "InvertingGradientsAttack",
    "Knowledge",
    "LabelStrategy",
    "LiRAAttack",
    "LossThresholdAttack",
    "MembershipAttack",
    "MembershipScores",
    "MinibatchSchedule",
    "Observation",
    "ObservationKind",
    "ObserverRole",
    "OthersPopulation",
    "PlaintextAttack",
    "PropertyClassifier",
    "PropertyInferenceAttack",
    "PropertyInferenceResult",
    "RecoveredSamples",
    "REFERENCE_MODES",
    "RMIAAttack",
    "RecoveredUpdate",
    "ReferenceMembershipAttack",
    "ReferenceMode",
    "ReferenceSignals",
    "RoundDifferenceAttack",
    "SampleMatch",
    "ScoreCombination",
    "ShadowUpdates",
    "TrapWeightsAttack",
    "UpdateEstimate",
    "ViewerRole",
    "combine_round_scores",
    "cosine_distance",
    "create_attack",
    "disaggregate",
    "group_by_round",
    "initial_parameters",
    "install_trap_weights",
    "l2_distance",
    "lira_scores",
    "make_upload_function",
    "marginal_probabilities",
    "match_samples",
    "dead_parameters",
    "minibatch_schedule",
    "observed_target",
    "own_weight",
    "recover_from_imprint",
    "recover_from_trap_weights",
    "recover_labels",
    "reference_logits",
    "reference_memberships",
    "rmia_scores",
    "scaled_logits",
    "shadow_updates",
    "target_observations",
    "total_variation",
    "train_reference_models",
    "true_class_probabilities",
    "use_batch_statistics",
]
