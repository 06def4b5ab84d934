"""A malicious server inside the simulation: its deviations are recorded as the malicious_server's views."""

from __future__ import annotations

import pytest
import torch

from attacks import Knowledge, create_attack
from defenses.secure_aggregation import SecureAggregation
from leakage import load_dataset
from leakage.errors import ConfigError
from leakage.metrics import update_cosine
from leakage.models import create_model
from leakage.quantify import MaliciousServer, score_transcript
from leakage.simulation import SimulationSettings, Simulator
from leakage.transcript import Transcript

DIGITS = load_dataset("digits")


def _run(attack: str, checks: tuple[str, ...] = (), n: int = 10) -> Transcript:
    settings = SimulationSettings(n_clients=n, rounds=2, algorithm="fedsgd", batch_size=1, scheme="secagg", seed=0)
    net = create_model("mlp", input_shape=DIGITS.input_shape, num_classes=10, generator=torch.Generator())
    inner = SecureAggregation(checks=checks, assumed_corrupt=2)
    return Simulator(settings, scheme=MaliciousServer(inner, attack, target=0, model=net)).run()


@pytest.mark.parametrize("attack", ["survivor_split", "key_substitution", "sybil", "model_inconsistency"])
def test_every_deviation_records_the_targets_update_in_the_malicious_servers_view(attack: str) -> None:
    run = _run(attack)
    views = run.views_of("malicious_server")
    assert [v.round_index for v in views] == [0, 1]
    for view, truth in zip(views, run.truth.rounds, strict=True):
        assert view.public["active_attack"] == attack and view.public["active_powers"]
        recovered = view.received["update:client:0"]
        assert isinstance(recovered, torch.Tensor)
        assert float(update_cosine(recovered, truth.update_of(0))) > (0.97 if attack == "model_inconsistency"
                                                                       else 0.99999)
    # the honest server's view is what it was: no plaintext update
    assert not any(key.startswith("update:") for v in run.views_of("server") for key in v.received)
    # attacks on update views run on it unchanged
    estimate = create_attack("plaintext").run(views)
    assert estimate.recovered and all(item.clients == {0} and item.count == 1 for item in estimate.recovered)


def test_checks_leave_the_malicious_server_with_nothing_or_abort_the_round() -> None:
    split = _run("survivor_split", ("min_threshold",))
    assert not any("update:client:0" in v.received for v in split.views_of("malicious_server"))
    bound = _run("model_inconsistency", ("bind_model",))
    assert all("aborted" in record.public for record in bound.rounds)
    sybils = _run("sybil", ("bind_model", "signed_keys", "consistency_round", "min_threshold"))
    assert all("update:client:0" in v.received for v in sybils.views_of("malicious_server"))


def test_leakage_score_reads_the_recorded_views() -> None:
    run = _run("key_substitution")
    rows = score_transcript(run, DIGITS, observers=["malicious_server"], attacks=[], target=0, seed=0)
    (row,) = [r for r in rows if r.attack == "plaintext"]
    assert row.observer_name == "malicious_server" and row.value == pytest.approx(1.0, abs=1e-6)


def test_a_malicious_server_needs_secure_aggregation_and_a_known_deviation() -> None:
    from leakage.aggregation import PlainAggregation

    with pytest.raises(ConfigError, match="inner must be a secagg or secagg\\+ scheme"):
        MaliciousServer(PlainAggregation(), "sybil")
    with pytest.raises(ConfigError, match="attack must be one of model_inconsistency, survivor_split"):
        MaliciousServer(SecureAggregation(), "bribery")
    with pytest.raises(ConfigError, match="give model"):
        MaliciousServer(SecureAggregation(), "model_inconsistency")
    _ = Knowledge
