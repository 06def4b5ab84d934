"""Federated-learning simulation: FedSGD and FedAvg rounds under an aggregation scheme."""

from leakage.simulation.batches import batch_schedule
from leakage.simulation.local_training import (
    LOSSES,
    LossFunction,
    LossName,
    WeightedLossFunction,
    make_loss,
    make_weighted_loss,
    mixes_samples,
    train_client,
    train_clients_masked,
    train_clients_vectorised,
)
from leakage.simulation.settings import (
    ALGORITHMS,
    CLIENT_SAMPLINGS,
    Algorithm,
    SimulationSettings,
)
from leakage.simulation.simulator import Simulator, scheme_deployment, simulate

__all__ = [
    "ALGORITHMS",
    "CLIENT_SAMPLINGS",
    "LOSSES",
    "Algorithm",
    "LossFunction",
    "LossName",
    "SimulationSettings",
    "Simulator",
    "WeightedLossFunction",
    "batch_schedule",
    "make_loss",
    "make_weighted_loss",
    "mixes_samples",
    "scheme_deployment",
    "simulate",
    "train_client",
    "train_clients_masked",
    "train_clients_vectorised",
]
