"""Boundary checks shared by constructors and config loading; each names the field.

Every check returns the value it accepted (as the plain Python type) and raises
:class:`~leakage.errors.ConfigError`, a ``ValueError``, with one line that names the
field, says what is allowed and shows what arrived: ``lr must be a finite number > 0,
got -1.0``. ``bool`` is never accepted as a number (``True`` is not a learning rate), and
nothing but ``bool`` is accepted as a flag (``"no"`` is truthy).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from typing import Literal, TypeVar

from leakage.errors import ConfigError

__all__ = [
    "require_bool",
    "require_choice",
    "require_device",
    "require_in_interval",
    "require_int",
    "require_nonnegative_float",
    "require_optional_int",
    "require_positive_float",
]

T = TypeVar("T")

Inclusive = Literal["both", "left", "right", "neither"]


def require_choice(name: str, value: object, choices: Sequence[T]) -> T:
    """Return ``value`` if it is one of ``choices``, else raise ConfigError naming ``name`` and every choice.

    A value matches only a choice of its own type, so ``True`` is not ``1`` and ``2.0`` is not ``2``.

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


def require_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is ``True`` or ``False``, else raise ConfigError naming ``name``.

    Truthy stand-ins (``1``, ``"yes"``, a numpy bool) are refused: a flag spelled wrong in
    a config file must fail, not silently switch something on.

    >>> require_bool("vectorise", False)
    False
    >>> require_bool("vectorise", "no")
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: vectorise must be true or false, got 'no'
    """
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def require_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer in ``[minimum, maximum]``, else raise ConfigError naming ``name``.

    ``maximum=None`` leaves the range open above. numpy integers are accepted, bools are not.

    >>> require_int("rounds", 3, minimum=1)
    3
    >>> require_int("rounds", 0, minimum=1)
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: rounds must be an integer >= 1, got 0
    >>> require_int("bits", 17, minimum=1, maximum=16)
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: bits must be an integer in [1, 16], got 17
    """
    number = _int_in(value, minimum, maximum)
    if number is None:
        raise ConfigError(f"{name} must be {_integers(minimum, maximum)}, got {value!r}")
    return number


def require_optional_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int | None:
    """Return ``None`` or ``value`` as an int in ``[minimum, maximum]``, else raise ConfigError naming ``name``.

    For options where ``None`` means "not set" (use every sample, no window...).

    >>> require_optional_int("batch_size", None, minimum=1) is None
    True
    >>> require_optional_int("batch_size", 0, minimum=1)
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: batch_size must be an integer >= 1 or None, got 0
    """
    if value is None:
        return None
    number = _int_in(value, minimum, maximum)
    if number is None:
        raise ConfigError(f"{name} must be {_integers(minimum, maximum)} or None, got {value!r}")
    return number


def require_positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise ConfigError naming ``name``.

    >>> require_positive_float("lr", 0.1)
    0.1
    >>> require_positive_float("lr", float("inf"))
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: lr must be a finite number > 0, got inf
    """
    number = _finite_float(value)
    if number is None or number <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def require_nonnegative_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is finite and >= 0, else raise ConfigError naming ``name``.

    >>> require_nonnegative_float("ridge", 0)
    0.0
    >>> require_nonnegative_float("ridge", -1.0)
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: ridge must be a finite number >= 0, got -1.0
    """
    number = _finite_float(value)
    if number is None or number < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def require_in_interval(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    inclusive: Inclusive = "both",
    what: str = "a number",
) -> float:
    """Return ``value`` as a float if it lies between ``low`` and ``high``, else raise ConfigError naming ``name``.

    Args:
        name: the field, as the user wrote it (``"dropout"``, ``"spec.audit.delta"``).
        value: what arrived.
        low, high: the finite ends of the interval.
        inclusive: which ends belong to it, as in ``pandas.Series.between``: ``"both"``
            ``[low, high]``, ``"left"`` ``[low, high)``, ``"right"`` ``(low, high]`` or
            ``"neither"`` ``(low, high)``.
        what: how the message calls an allowed value (``"a probability"``).

    >>> require_in_interval("fraction", 0.25, 0, 1)
    0.25
    >>> require_in_interval("dropout", 1.0, 0, 1, inclusive="left", what="a probability")
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: dropout must be a probability in [0, 1), got 1.0
    """
    number = _finite_float(value)
    closed_low = inclusive in ("both", "left")
    closed_high = inclusive in ("both", "right")
    if (
        number is None
        or not (low <= number if closed_low else low < number)
        or not (number <= high if closed_high else number < high)
    ):
        interval = f"{'[' if closed_low else '('}{_bound(low)}, {_bound(high)}{']' if closed_high else ')'}"
        raise ConfigError(f"{name} must be {what} in {interval}, got {value!r}")
    return number


_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")


def require_device(name: str, value: object) -> str:
    """Return ``value`` if it names a torch device present here (``"cpu"``, ``"cuda"``, ``"cuda:N"``).

    A GPU asked for where torch finds none is refused here, before any work starts,
    rather than when the first tensor moves.

    >>> require_device("device", "cpu")
    'cpu'
    >>> require_device("device", "gpu")
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'
    """
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise ConfigError(f"{name} must be 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    if value.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"{name} {value!r} needs a CUDA GPU, and torch finds none here; use 'cpu'")
        index = int(value.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"{name} {value!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return value


def _finite_float(value: object) -> float | None:
    """Return ``value`` as a float if it is a finite real number (never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int_in(value: object, minimum: int, maximum: int | None) -> int | None:
    """Return ``value`` as an int if it is an integer (never a bool) in ``[minimum, maximum]``, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    number = int(value)
    return number if minimum <= number and (maximum is None or number <= maximum) else None


def _integers(minimum: int, maximum: int | None) -> str:
    return f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"


def _bound(end: float) -> str:
    """Write an interval's end as a person would: ``0`` and ``0.5``, not ``0.0``."""
    return str(int(end)) if float(end).is_integer() else repr(float(end))
