"""Aggregation-scheme interface, registries, compositions and the unprotected ``plain`` scheme."""

from leakage.aggregation.base import (
    SCHEMES,
    AggregationScheme,
    ClientSampling,
    Deployment,
    RoundContext,
    RoundOutcome,
    Weighting,
    weighted_mean,
)
from leakage.aggregation.composition import (
    ComposedScheme,
    create_scheme,
    scheme_names,
    split_scheme_name,
)
from leakage.aggregation.mechanism import MECHANISMS, ClientMechanism, MechanismOutput
from leakage.aggregation.plain import PlainAggregation

__all__ = [
    "MECHANISMS",
    "SCHEMES",
    "AggregationScheme",
    "ClientMechanism",
    "ClientSampling",
    "ComposedScheme",
    "Deployment",
    "MechanismOutput",
    "PlainAggregation",
    "RoundContext",
    "RoundOutcome",
    "Weighting",
    "create_scheme",
    "scheme_names",
    "split_scheme_name",
    "weighted_mean",
]
