"""Model registry and flat-parameter helpers."""

from leakage.models.flat import (
    BufferLayout,
    ParameterLayout,
    flatten_buffers,
    flatten_parameters,
    load_flat_buffers,
    load_flat_parameters,
)
from leakage.models.user import (
    ModelSource,
    build_user_model,
    is_import_path,
    load_checkpoint,
    model_label,
    resolve_import_path,
)
from leakage.models.zoo import MODELS, create_model

__all__ = [
    "MODELS",
    "BufferLayout",
    "ModelSource",
    "ParameterLayout",
    "build_user_model",
    "create_model",
    "flatten_buffers",
    "flatten_parameters",
    "is_import_path",
    "load_checkpoint",
    "load_flat_buffers",
    "load_flat_parameters",
    "model_label",
    "resolve_import_path",
]
