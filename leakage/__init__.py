"""leakage: measure privacy leakage in federated learning.

Simulate FL rounds, record exactly what each observer sees, attack those views and
score how much each aggregation scheme leaks.

The names below load on first use (PEP 562), so ``import leakage`` and ``leakage
--help`` stay fast: torch and the rest are imported when something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each public name lives; importing it happens on first attribute access.
_HOMES: dict[str, str] = {
    **dict.fromkeys(
        ("MECHANISMS", "SCHEMES", "AggregationScheme", "ClientMechanism", "Deployment", "RoundContext",
         "RoundOutcome", "create_scheme"),
        "leakage.aggregation",
    ),
    **dict.fromkeys(("DATASETS", "PARTITIONS", "Dataset", "load_dataset", "partition_dataset"), "leakage.data"),
    **dict.fromkeys(
        ("ConfigError", "DatasetNotFoundError", "NonFiniteUpdateError", "ThreatModelError", "UnknownNameError"),
        "leakage.errors",
    ),
    **dict.fromkeys(
        ("MODELS", "ParameterLayout", "create_model", "flatten_parameters", "load_flat_parameters"), "leakage.models"
    ),
    **dict.fromkeys(("SimulationSettings", "Simulator", "simulate"), "leakage.simulation"),
    **dict.fromkeys(("GroundTruth", "RoundRecord", "RoundTruth", "Transcript"), "leakage.transcript"),
    **dict.fromkeys(("EAVESDROPPER", "PUBLIC", "SERVER", "RoundView", "client_observer"), "leakage.views"),
}

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


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` and return it (once; later lookups are plain attributes)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'leakage' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
