"""The software environment a result was produced in, recorded next to every result file."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["environment_info"]

_PACKAGES = ("leakage", "torch", "torchvision", "numpy", "scipy", "scikit-learn")


def environment_info() -> dict[str, str]:
    """Return Python, platform and package versions as strings.

    >>> "torch" in environment_info()
    True
    """
    info = {"python": platform.python_version(), "platform": platform.platform()}
    for package in _PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info
