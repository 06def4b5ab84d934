"""Canary records: drawn out of the data, half put back (mislabelled), audited from one run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from defenses.dp import CentralDP
from leakage.data import load_dataset
from leakage.errors import ConfigError
from leakage.quantify import CanaryRecordSpec, audit_with_canary_records, insert_canary_records
from leakage.simulation import SimulationSettings

DIGITS = load_dataset("digits")
_TRAINING: dict[str, Any] = {"algorithm": "fedavg", "n_clients": 10, "local_epochs": 10, "batch_size": 16, "lr": 0.3, "rounds": 10}


def test_the_training_data_holds_the_inserted_canaries_with_wrong_labels_and_no_other() -> None:
    canaries = insert_canary_records(DIGITS, CanaryRecordSpec(m=100, seed=3))
    source = torch.tensor(canaries.source_indices)
    inserted = torch.from_numpy(canaries.inserted)
    assert 30 < int(inserted.sum()) < 70 and len(set(canaries.source_indices)) == 100
    assert torch.equal(canaries.records.inputs, DIGITS.inputs[source])
    assert bool((canaries.records.targets != DIGITS.targets[source]).all())  # every label is wrong
    assert len(canaries.training) == len(DIGITS) - 100 + int(inserted.sum())
    # the inserted canaries are the last records, in order; the others are nowhere in the data
    tail = canaries.training.inputs[len(DIGITS) - 100:]
    assert torch.equal(tail, canaries.records.inputs[inserted])
    assert torch.equal(canaries.training.targets[len(DIGITS) - 100:], canaries.records.targets[inserted])
    keep = torch.ones(len(DIGITS), dtype=torch.bool)
    keep[source] = False
    assert torch.equal(canaries.training.inputs[: len(DIGITS) - 100], DIGITS.inputs[keep])


def test_canaries_keep_their_labels_when_asked() -> None:
    canaries = insert_canary_records(DIGITS, CanaryRecordSpec(m=50, mislabel=False))
    assert torch.equal(canaries.records.targets, DIGITS.targets[torch.tensor(canaries.source_indices)])
    assert not canaries.mislabelled


def test_memorised_canaries_prove_epsilon_above_two_from_the_released_model() -> None:
    audit = audit_with_canary_records(SimulationSettings(seed=0, **_TRAINING), CanaryRecordSpec(m=200), dataset=DIGITS)
    assert audit.observer == "public" and audit.m == 200 and audit.accountant_epsilon is None
    # measured 2.64: mislabelled canaries the released model fits are the top guesses
    assert audit.epsilon_lower_bound > 2.0
    fixed = audit.audit("fixed", "steinke")
    assert fixed.guesses == 160 and fixed.correct > 0.75 * fixed.guesses
    assert all(line.count("delta") >= 1 for line in audit.summary().splitlines())


def test_under_dp_the_bound_stays_below_the_accountant() -> None:
    settings = SimulationSettings(seed=1, scheme="dp", **_TRAINING)
    audit = audit_with_canary_records(settings, CanaryRecordSpec(m=200, seed=1), dataset=DIGITS,
                                      scheme=CentralDP(clip_norm=1.0, noise_multiplier=2.0, delta=1e-5),
                                      observer="eavesdropper", attack_options={"rounds": "max", "calibration": "auto"})
    assert audit.accountant_epsilon is not None and audit.accountant_delta == 1e-5
    assert audit.epsilon_lower_bound < audit.accountant_epsilon


def test_the_same_seed_gives_the_same_audit() -> None:
    settings = SimulationSettings(seed=2, n_clients=4, rounds=2, algorithm="fedavg", local_epochs=2)
    first = audit_with_canary_records(settings, CanaryRecordSpec(m=60, seed=5), dataset=DIGITS)
    again = audit_with_canary_records(settings, CanaryRecordSpec(m=60, seed=5), dataset=DIGITS)
    assert first.to_dict() == again.to_dict() and first.scores == again.scores
    other = insert_canary_records(DIGITS, CanaryRecordSpec(m=60, seed=6))
    assert not np.array_equal(other.inserted, insert_canary_records(DIGITS, CanaryRecordSpec(m=60, seed=5)).inserted)


@pytest.mark.parametrize(("spec", "message"), [
    ({"m": 1}, "m must be an integer >= 2"),
    ({"m": 10, "seed": -1}, "seed must be an integer >= 0"),
    ({"m": 10, "mislabel": "yes"}, "mislabel must be true or false"),
])
def test_bad_canary_record_specs_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CanaryRecordSpec(**spec)  # type: ignore[arg-type]


def test_too_many_canaries_or_a_non_membership_attack_is_refused() -> None:
    with pytest.raises(ConfigError, match="m must be at most half the dataset's 1797 records, got 1000"):
        insert_canary_records(DIGITS, CanaryRecordSpec(m=1000))
    settings = SimulationSettings(seed=0, n_clients=2, rounds=1)
    with pytest.raises(ConfigError, match="attack must be a membership attack, got 'idlg'"):
        audit_with_canary_records(settings, CanaryRecordSpec(m=20), dataset=DIGITS, attack="idlg")
