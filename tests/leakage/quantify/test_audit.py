import math

import pytest
from scipy import stats

from leakage.quantify import clopper_pearson, epsilon_lower_bound, parse_spec, score


def test_clopper_pearson_matches_the_closed_forms_at_the_edges() -> None:
    assert clopper_pearson(0, 20, 0.95) == (0.0, pytest.approx(1 - 0.05 ** (1 / 20)))
    assert clopper_pearson(20, 20, 0.95) == (pytest.approx(0.05 ** (1 / 20)), 1.0)
    low, high = clopper_pearson(7, 20, 0.95)
    assert low == pytest.approx(stats.beta.ppf(0.05, 7, 14)) and high == pytest.approx(stats.beta.ppf(0.95, 8, 13))


def test_the_epsilon_bound_grows_with_separation_and_vanishes_for_a_coin_flip() -> None:
    perfect = epsilon_lower_bound(0, 32, 0, 32, confidence=0.95, delta=0.0)
    coin = epsilon_lower_bound(16, 32, 16, 32, confidence=0.95, delta=0.0)

    upper = 1 - 0.025 ** (1 / 32)  # each rate bounded at (1 + 0.95) / 2
    assert perfect == pytest.approx(math.log((1 - upper) / upper))
    assert coin == 0.0
    assert epsilon_lower_bound(2, 32, 2, 32, confidence=0.95, delta=0.0) < perfect


@pytest.fixture(scope="module")
def audits():
    spec = parse_spec({
        "task": {"dataset": "digits", "model": "mlp", "model_options": {"hidden": [16], "activation": "sigmoid"},
                 "algorithm": "fedsgd", "batch_size": 1, "lr": 0.1, "rounds": 1},
        "deployments": [{"name": "two", "n_clients": 2}],
        "schemes": ["plain", "dp", "mpc"],
        "scheme_options": {"dp": {"clip_norm": 0.1, "noise_multiplier": 8.0}},
        "observers": ["server", "participant", "public"],
        "attacks": [{"name": "round_difference"}],
        "audit": {"trials": 64},
    })
    report = score(spec).to_dict()
    return {(a["scheme"], a["observer"]): a for a in report["audits"]}


def test_a_plaintext_server_is_caught_distinguishing_the_canary(audits) -> None:
    server = audits[("plain", "server")]

    assert server["trials"] == 64 and server["method"] == "plaintext"
    assert server["auc"] == 1.0 and server["epsilon_lower_bound"] > 1.0


def test_the_public_and_mpc_observers_learn_nothing_per_round(audits) -> None:
    for key in [("plain", "public"), ("mpc", "server"), ("mpc", "participant")]:
        assert audits[key]["auc"] == 0.5 and audits[key]["epsilon_lower_bound"] == 0.0


def test_under_dp_the_bound_for_a_participant_stays_below_the_accountant(audits) -> None:
    participant = audits[("dp", "participant")]

    assert participant["accountant_epsilon"] is not None
    assert participant["epsilon_lower_bound"] <= participant["accountant_epsilon"]
    server = audits[("dp", "server")]  # central DP trusts the server: no accountant bound applies to it
    assert server["epsilon_lower_bound"] > 1.0 and server["accountant_epsilon"] is None
