"""Model registry and flat-parameter helpers."""

from leakage.models.flat import (
    ParameterLayout,
    flatten_parameters,
    load_flat_parameters,
)
from leakage.models.zoo import MODELS, create_model

__all__ = [
    "MODELS",
    "ParameterLayout",
    "create_model",
    "flatten_parameters",
    "load_flat_parameters",
]
