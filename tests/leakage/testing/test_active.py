"""``leakage.testing`` against an active server: secure aggregation among 100 fails, checks make it pass."""

from __future__ import annotations

import pytest

from leakage.errors import ConfigError
from leakage.testing import assert_hides_single_updates, measure_single_update_leakage

_TASK = {"dataset": "digits", "model": "mlp", "model_options": {"hidden": [16]}, "algorithm": "fedsgd",
         "batch_size": 1, "lr": 0.1, "rounds": 1}


def test_secure_aggregation_among_a_hundred_does_not_hide_updates_from_an_active_server() -> None:
    with pytest.raises(AssertionError, match="secagg does not hide single updates: the observer recovered"):
        assert_hides_single_updates("secagg", 100, threat="active", task=_TASK)


@pytest.mark.parametrize(("attack", "check"), [
    ("model_inconsistency", "bind_model"),
    ("key_substitution", "signed_keys"),
    ("survivor_split", "min_threshold"),  # the split uses 2 corrupt clients: clients assume 2
])
def test_the_check_that_stops_the_named_attack_makes_it_pass(attack: str, check: str) -> None:
    unchecked = measure_single_update_leakage("secagg", 20, threat="active", attack=attack, task=_TASK)
    assert unchecked.individual and unchecked.leakage > 0.9, unchecked.describe()
    checked = assert_hides_single_updates("secagg", 20, threat="active", attack=attack, task=_TASK,
                                          scheme_options={"checks": [check], "assumed_corrupt": 2})
    assert not checked.individual and checked.leakage == 0.0
    assert all(row["attack"] == attack for row in checked.rows)


def test_no_check_stops_sybils() -> None:
    every = ["bind_model", "signed_keys", "consistency_round", "min_threshold", "vet_model"]
    with pytest.raises(AssertionError, match="sybil"):
        assert_hides_single_updates("secagg", 20, threat="active", attack="sybil", task=_TASK,
                                    scheme_options={"checks": every})


def test_an_attack_without_the_active_threat_is_one_line() -> None:
    with pytest.raises(ConfigError, match="it needs threat='active'"):
        measure_single_update_leakage("secagg", 5, attack="sybil")
    with pytest.raises(ConfigError, match="attack must be one of"):
        measure_single_update_leakage("secagg", 5, threat="active", attack="nope")
