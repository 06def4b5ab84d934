"""Turn nested dataclass output into JSON-ready plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["plain_data"]


def plain_data(value: Any) -> Any:
    """Return ``value`` with mappings as ``str``-keyed dicts and tuples as lists, recursively.

    >>> plain_data({"a": (1, {2: (3,)})})
    {'a': [1, {'2': [3]}]}
    """
    if isinstance(value, Mapping):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(item) for item in value]
    return value
