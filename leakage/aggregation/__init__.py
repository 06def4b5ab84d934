"""Aggregation-scheme interface, registries, compositions, the standard views and the ``plain`` scheme."""

from leakage.aggregation.base import (
    SCHEMES,
    AggregationScheme,
    ClientSampling,
    Deployment,
    RoundContext,
    RoundOutcome,
    Weighting,
    WrappedScheme,
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
from leakage.aggregation.views import MODEL_DISCLOSURES, ModelDisclosure, observer_views

__all__ = [
    "MECHANISMS",
    "MODEL_DISCLOSURES",
    "SCHEMES",
    "AggregationScheme",
    "ClientMechanism",
    "ClientSampling",
    "ComposedScheme",
    "Deployment",
    "MechanismOutput",
    "ModelDisclosure",
    "PlainAggregation",
    "RoundContext",
    "RoundOutcome",
    "Weighting",
    "WrappedScheme",
    "create_scheme",
    "observer_views",
    "scheme_names",
    "split_scheme_name",
    "weighted_mean",
]
