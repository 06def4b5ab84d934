"""Boundary checks shared by constructors and config loading; each names the field."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TypeVar

from leakage.errors import ConfigError

__all__ = ["require_choice", "require_int", "require_positive_float"]

T = TypeVar("T")


def require_choice(name: str, value: object, choices: Sequence[T]) -> T:
    """Return ``value`` if it is one of ``choices``, else raise ConfigError naming ``name`` and every choice.

    >>> require_choice("algorithm", "fedavg", ("fedsgd", "fedavg"))
    'fedavg'
    >>> require_choice("algorithm", "sgd", ("fedsgd", "fedavg"))
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: algorithm must be one of fedsgd, fedavg, got 'sgd'
    """
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return choice
    raise ConfigError(f"{name} must be one of {', '.join(str(c) for c in choices)}, got {value!r}")


def require_int(name: str, value: object, *, minimum: int) -> int:
    """Return ``value`` as an int, or raise ConfigError naming ``name`` and the bound.

    >>> require_int("rounds", 3, minimum=1)
    3
    >>> require_int("rounds", 0, minimum=1)
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: rounds must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def require_positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise ConfigError naming ``name``.

    >>> require_positive_float("lr", 0.1)
    0.1
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)
