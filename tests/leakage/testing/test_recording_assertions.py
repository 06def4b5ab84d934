"""The single-update assertions on recordings: secure aggregation's two-party weakness pinned down, and its crowd."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakage import simulate
from leakage.recording import record_transcript
from leakage.testing import (
    assert_recording_hides_single_updates,
    assert_recording_leaks_single_updates,
    measure_recording_leakage,
)

TASK = {"algorithm": "fedsgd", "batch_size": 1, "rounds": 2, "model": "mlp",
        "model_options": {"hidden": [16], "activation": "sigmoid"}}


def _recorded(tmp_path: Path, n_clients: int) -> Path:
    transcript = simulate(n_clients=n_clients, scheme="secagg", seed=0, **TASK)
    return record_transcript(transcript, tmp_path / f"n{n_clients}", canaries=(0,), recorded=(0, 1))


def test_two_participants_leak_and_the_assertion_says_so(tmp_path: Path) -> None:
    folder = _recorded(tmp_path, 2)
    measured = assert_recording_leaks_single_updates(folder, "participant")
    assert measured.individual and measured.leakage > 0.99 and measured.scheme == "secagg"
    with pytest.raises(AssertionError, match=r"does not hide single updates: the observer recovered a canary's"):
        assert_recording_hides_single_updates(folder, "participant")


def test_the_server_of_a_crowd_learns_no_single_update(tmp_path: Path) -> None:
    folder = _recorded(tmp_path, 20)
    measured = assert_recording_hides_single_updates(folder, "server")
    assert not measured.individual and measured.n_clients == 20
    assert measure_recording_leakage(folder, observer="participant").individual is False
    with pytest.raises(AssertionError, match="expected the recorded run to leak"):
        assert_recording_leaks_single_updates(folder, "participant")
