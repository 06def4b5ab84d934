"""``threat = "active"``: the malicious server's rows, scored like update estimates, stopped by the checks."""

from __future__ import annotations

import pytest

from leakage.errors import ConfigError
from leakage.quantify import parse_spec, score


def _spec(**extra: object):  # type: ignore[no-untyped-def]
    return parse_spec({
        "task": {"dataset": "digits", "model": "mlp", "model_options": {"hidden": [16]}, "algorithm": "fedsgd",
                 "batch_size": 2, "lr": 0.1, "rounds": 1},
        "deployments": [{"name": "twenty", "n_clients": 20}], "schemes": ["secagg"], "observers": ["server"],
        "audit": False, "threat": "active", **extra,
    })


def test_an_active_threat_adds_the_malicious_servers_rows() -> None:
    spec = _spec()
    assert spec.observers == ("server", "malicious_server")
    rows = {(r["scheme"], r["attack"]): r for r in score(spec).to_dict()["results"]
            if r["observer"] == "malicious_server"}
    for attack in ("survivor_split", "key_substitution", "sybil"):
        assert rows[("secagg", attack)]["value"] == pytest.approx(1.0, abs=1e-6)  # unmasked exactly
        assert rows[("secagg", attack)]["metrics"]["mixed_clients"] == 1.0
    inconsistent = rows[("secagg", "model_inconsistency")]
    assert inconsistent["value"] > 0.95 and "powers used: per_client_models" in inconsistent["note"]
    assert rows[("mpc", "sybil")]["status"] == "not_applicable"  # mpc is not secure aggregation
    assert all(r["leakage"] == 0.0 for (scheme, _), r in rows.items() if scheme == "mpc")


def test_each_check_stops_its_attack_in_the_rows() -> None:
    spec = _spec(scheme_options={"secagg": {"checks": ["bind_model", "signed_keys", "min_threshold"],
                                            "assumed_corrupt": 2}})
    rows = {r["attack"]: r for r in score(spec).to_dict()["results"]
            if r["observer"] == "malicious_server" and r["scheme"] == "secagg"}
    for attack in ("model_inconsistency", "survivor_split", "key_substitution"):
        assert rows[attack]["leakage"] == 0.0 and rows[attack]["metrics"]["recovered"] == 0.0, rows[attack]["note"]
    assert "client checks: bind_model, signed_keys, min_threshold" in rows["key_substitution"]["note"]
    assert rows["sybil"]["leakage"] == pytest.approx(1.0)  # registered Sybils pass every check


def test_an_unknown_threat_is_one_line() -> None:
    with pytest.raises(ConfigError, match="spec.threat must be one of passive, active, got 'hostile'"):
        _spec(threat="hostile")


def test_the_sample_attacks_score_the_fraction_of_the_targets_samples_and_say_if_attributed() -> None:
    spec = parse_spec({
        "task": {"dataset": "digits", "model": "mlp", "algorithm": "fedsgd", "batch_size": 8, "lr": 0.1,
                 "rounds": 1},
        "deployments": [{"name": "ten", "n_clients": 10}], "schemes": ["secagg"], "observers": ["malicious_server"],
        "audit": False, "threat": "active",
    })
    rows = {r["attack"]: r for r in score(spec).to_dict()["results"]
            if r["observer"] == "malicious_server" and r["scheme"] == "secagg"}
    imprint, alone = rows["imprint"], rows["imprint_inconsistent"]
    assert imprint["metric"] == "fraction_30db" and imprint["metrics"]["attributed"] == 0.0
    assert imprint["value"] >= 0.5 and imprint["leakage"] == imprint["value"]
    assert alone["value"] == 1.0 and alone["metrics"]["attributed"] == 1.0  # all 8 of its samples, as its own
    assert "trap_weights" in rows


def test_vetting_the_architecture_and_binding_the_model_stop_the_imprint_rows() -> None:
    spec = parse_spec({
        "task": {"dataset": "digits", "model": "mlp", "algorithm": "fedsgd", "batch_size": 8, "lr": 0.1,
                 "rounds": 1},
        "deployments": [{"name": "ten", "n_clients": 10}], "schemes": ["secagg"], "observers": ["malicious_server"],
        "audit": False, "threat": "active", "scheme_options": {"secagg": {"checks": ["vet_model", "bind_model"]}},
    })
    rows = {r["attack"]: r for r in score(spec).to_dict()["results"]
            if r["observer"] == "malicious_server" and r["scheme"] == "secagg"}
    assert rows["imprint"]["value"] == 0.0 and "vet_model" in rows["imprint"]["note"]
    assert rows["imprint_inconsistent"]["value"] == 0.0
