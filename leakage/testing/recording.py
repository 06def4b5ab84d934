"""Assertions on a recording of a real run: does the run hide its canaries' updates from an observer?

The counterpart of :func:`~leakage.testing.assert_hides_single_updates` for a team's own
framework: record a run with canary clients (:mod:`leakage.recording`, the Flower bridge
:mod:`leakage.integrations.flower`), then assert in the team's test suite that an
observer recovers no canary's update, or pin down a known weakness (two participants).
"""

from __future__ import annotations

import os

from leakage.quantify import AttackSpec, DeploymentSpec, score_recording
from leakage.testing.single_update import SingleUpdateLeakage

__all__ = [
    "assert_recording_hides_single_updates",
    "assert_recording_leaks_single_updates",
    "measure_recording_leakage",
]


def measure_recording_leakage(path: str | os.PathLike[str], *, observer: str = "server") -> SingleUpdateLeakage:
    """Score the recording in ``path`` and return what ``observer`` learned about its canaries' updates.

    The worst canary counts: ``leakage`` is the largest normalised update-recovery leakage
    over canaries and attacks (``round_difference``, ``disaggregation`` and the implicit
    ones), ``individual`` whether any canary's own update was recovered.

    Raises:
        ConfigError: the recording is bad, or ``observer`` is not one a recording holds.
    """
    spec = DeploymentSpec(observers=(observer,), attacks=(AttackSpec("round_difference"), AttackSpec("disaggregation")))
    report = score_recording(path, spec)
    rows = [result.row for result in report.results if result.row.observer == observer]
    ran = [row for row in rows if row.status == "ok"]
    worst = max(ran, key=lambda row: row.leakage, default=None)
    recording = report.recording or {}
    return SingleUpdateLeakage(
        scheme=str(recording.get("scheme", "?")),
        n_clients=int(recording.get("clients", 0)),
        observer=observer,
        leakage=worst.leakage if worst else 0.0,
        individual=any(row.metrics.get("mixed_clients") == 1 for row in ran),
        worst=f"{worst.attack} ({worst.metric} {worst.value:.3g})" if worst else "no attack applies",
        rows=tuple(result.to_dict() for result in report.results if result.row.observer == observer),
    )


def assert_recording_hides_single_updates(
    path: str | os.PathLike[str], observer: str = "server", *, max_leakage: float = 0.25
) -> SingleUpdateLeakage:
    """Assert that ``observer`` recovered no canary's individual update in the recorded run.

    Raises:
        AssertionError: it did, or its leakage exceeds ``max_leakage``; the message has the numbers.
    """
    measured = measure_recording_leakage(path, observer=observer)
    problems = []
    if measured.individual:
        problems.append("the observer recovered a canary's individual update")
    if measured.leakage > max_leakage:
        problems.append(f"leakage {measured.leakage:.2f} > {max_leakage}")
    if problems:
        raise AssertionError(f"the recorded run does not hide single updates: {'; '.join(problems)} "
                             f"[{measured.describe()}]")
    return measured


def assert_recording_leaks_single_updates(
    path: str | os.PathLike[str], observer: str = "participant", *, min_leakage: float = 0.9
) -> SingleUpdateLeakage:
    """Assert that ``observer`` did recover a canary's individual update (a known weakness, pinned down).

    Raises:
        AssertionError: it did not, with leakage at least ``min_leakage``; the message has the numbers.
    """
    measured = measure_recording_leakage(path, observer=observer)
    if not measured.individual or measured.leakage < min_leakage:
        raise AssertionError(
            f"expected the recorded run to leak a canary's update to the {observer}, but it did not "
            f"[{measured.describe()}]"
        )
    return measured
