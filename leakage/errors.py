"""Project exceptions: all subclass built-ins so callers can catch either."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetNotFoundError",
    "NonFiniteUpdateError",
    "ThreatModelError",
    "UnknownNameError",
]


class ConfigError(ValueError):
    """A setting is missing, of the wrong type or outside its allowed range."""


class UnknownNameError(ConfigError):
    """A registry lookup used a name that is not registered."""


class ThreatModelError(ValueError):
    """An attack asked for data its observer cannot see."""


class NonFiniteUpdateError(ValueError):
    """A client produced an update containing NaN or Inf."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that must be read from a local folder is not there."""
