"""Differential privacy for federated learning: central (``dp``), local (``ldp``) and distributed (``ddp``).

Importing this package registers the scheme ``dp`` in ``SCHEMES`` and the client
mechanisms ``ldp`` and ``ddp`` in ``MECHANISMS``. Epsilons come from Google's
``dp_accounting`` through :mod:`defenses.dp.accountant`, matched to the simulator's
client sampling.
"""

from defenses.dp.accountant import (
    ACCOUNTING_METHODS,
    AccountingMethod,
    NeighboringRelation,
    PrivacySpent,
    compute_epsilon,
    deployment_privacy_spent,
    local_privacy_spent,
    privacy_spent,
)
from defenses.dp.central import CentralDP
from defenses.dp.clipping import clip_updates, stochastic_round
from defenses.dp.discrete_gaussian import sample_discrete_gaussian
from defenses.dp.distributed import DistributedDP
from defenses.dp.local import LocalDP

__all__ = [
    "ACCOUNTING_METHODS",
    "AccountingMethod",
    "CentralDP",
    "DistributedDP",
    "LocalDP",
    "NeighboringRelation",
    "PrivacySpent",
    "clip_updates",
    "compute_epsilon",
    "deployment_privacy_spent",
    "local_privacy_spent",
    "privacy_spent",
    "sample_discrete_gaussian",
    "stochastic_round",
]
