"""The ``leakage`` pytest plugin (entry point ``pytest11``): fixtures for leakage regression tests.

Installed with the package, pytest loads it automatically. Fixtures:

- ``leakage_task``: the learning task the other fixtures simulate (override it in your
  ``conftest.py`` to test your own dataset or model);
- ``hides_single_updates``: ``hides_single_updates(scheme, n_clients, observer="server",
  **limits)`` runs :func:`leakage.testing.assert_hides_single_updates` on ``leakage_task``;
- ``leaks_single_updates``: the same for :func:`leakage.testing.assert_leaks_single_updates`.

Example (a test in your suite)::

    def test_secure_aggregation_hides_updates_among_twenty(hides_single_updates):
        hides_single_updates("secagg", 20)

    def test_two_participants_see_each_other(leaks_single_updates):
        leaks_single_updates("secagg", 2, observer="participant")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from leakage.testing import (
    DEFAULT_TASK,
    SingleUpdateLeakage,
    assert_hides_single_updates,
    assert_leaks_single_updates,
)

__all__ = ["hides_single_updates", "leakage_task", "leaks_single_updates"]

Check = Callable[..., SingleUpdateLeakage]


@pytest.fixture
def leakage_task() -> Mapping[str, Any]:
    """The task simulated by ``hides_single_updates`` and ``leaks_single_updates``."""
    return dict(DEFAULT_TASK)


@pytest.fixture
def hides_single_updates(leakage_task: Mapping[str, Any]) -> Check:
    """``assert_hides_single_updates`` bound to ``leakage_task``."""

    def check(scheme: str, n_clients: int, observer: str = "server", **options: Any) -> SingleUpdateLeakage:
        return assert_hides_single_updates(scheme, n_clients, observer, task=leakage_task, **options)

    return check


@pytest.fixture
def leaks_single_updates(leakage_task: Mapping[str, Any]) -> Check:
    """``assert_leaks_single_updates`` bound to ``leakage_task``."""

    def check(scheme: str, n_clients: int, observer: str = "participant", **options: Any) -> SingleUpdateLeakage:
        return assert_leaks_single_updates(scheme, n_clients, observer, task=leakage_task, **options)

    return check
