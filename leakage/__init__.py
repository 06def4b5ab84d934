"""leakage: measure privacy leakage in federated learning.

Simulate FL rounds, record exactly what each observer sees, attack those views and
score how much each aggregation scheme leaks.
"""

from leakage.aggregation import (
    MECHANISMS,
    SCHEMES,
    AggregationScheme,
    ClientMechanism,
    Deployment,
    RoundContext,
    RoundOutcome,
    create_scheme,
)
from leakage.data import DATASETS, PARTITIONS, Dataset, load_dataset, partition_dataset
from leakage.errors import (
    ConfigError,
    DatasetNotFoundError,
    NonFiniteUpdateError,
    ThreatModelError,
    UnknownNameError,
)
from leakage.models import (
    MODELS,
    ParameterLayout,
    create_model,
    flatten_parameters,
    load_flat_parameters,
)
from leakage.simulation import SimulationSettings, Simulator, simulate
from leakage.transcript import GroundTruth, RoundRecord, RoundTruth, Transcript
from leakage.views import EAVESDROPPER, PUBLIC, SERVER, RoundView, client_observer

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "EAVESDROPPER",
    "MECHANISMS",
    "MODELS",
    "PARTITIONS",
    "PUBLIC",
    "SCHEMES",
    "SERVER",
    "AggregationScheme",
    "ClientMechanism",
    "ConfigError",
    "Dataset",
    "DatasetNotFoundError",
    "Deployment",
    "GroundTruth",
    "NonFiniteUpdateError",
    "ParameterLayout",
    "RoundContext",
    "RoundOutcome",
    "RoundRecord",
    "RoundTruth",
    "RoundView",
    "SimulationSettings",
    "Simulator",
    "ThreatModelError",
    "Transcript",
    "UnknownNameError",
    "client_observer",
    "create_model",
    "create_scheme",
    "flatten_parameters",
    "load_dataset",
    "load_flat_parameters",
    "partition_dataset",
    "simulate",
]
