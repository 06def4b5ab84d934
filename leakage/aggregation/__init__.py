"""Aggregation-scheme interface, registry, and the unprotected ``plain`` scheme."""

from leakage.aggregation.base import (
    SCHEMES,
    AggregationScheme,
    RoundContext,
    RoundOutcome,
    create_scheme,
    weighted_mean,
)
from leakage.aggregation.plain import PlainAggregation

__all__ = [
    "SCHEMES",
    "AggregationScheme",
    "PlainAggregation",
    "RoundContext",
    "RoundOutcome",
    "create_scheme",
    "weighted_mean",
]
