"""Attacks on what federated-learning observers see.

Every attack has the same call: ``create_attack(name, **options).run(view_or_observation,
knowledge)`` returns an :class:`AttackResult` (reconstruction, labels, optimisation trace).

Gradient inversion: ``dlg`` (Zhu et al. 2019), ``idlg`` (Zhao et al. 2020),
``inverting_gradients`` (Geiping et al. 2020, batched restarts), ``analytic`` (exact
inversion of a fully connected first layer). Label recovery: :func:`recover_labels`.
"""

from attacks.analytic import AnalyticInversion
from attacks.base import (
    ATTACKS,
    Attack,
    AttackResult,
    Knowledge,
    Observation,
    ObservationKind,
    create_attack,
)
from attacks.dlg import DLGAttack, IDLGAttack
from attacks.inverting_gradients import InvertingGradientsAttack
from attacks.labels import LabelStrategy, recover_labels
from attacks.objective import (
    cosine_distance,
    l2_distance,
    make_upload_function,
    observed_target,
    total_variation,
)

__all__ = [
    "ATTACKS",
    "AnalyticInversion",
    "Attack",
    "AttackResult",
    "DLGAttack",
    "IDLGAttack",
    "InvertingGradientsAttack",
    "Knowledge",
    "LabelStrategy",
    "Observation",
    "ObservationKind",
    "cosine_distance",
    "create_attack",
    "l2_distance",
    "make_upload_function",
    "observed_target",
    "recover_labels",
    "total_variation",
]
