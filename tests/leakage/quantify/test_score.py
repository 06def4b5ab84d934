import pytest

from leakage.quantify import parse_spec, score


def _spec(deployments, schemes, observers, attacks=({"name": "round_difference"},), **extra):
    return parse_spec({
        "name": "test",
        "task": {"dataset": "digits", "model": "mlp", "model_options": {"hidden": [16], "activation": "sigmoid"},
                 "algorithm": "fedsgd", "batch_size": 1, "lr": 0.1, "rounds": 2},
        "deployments": deployments,
        "schemes": schemes,
        "observers": observers,
        "attacks": list(attacks),
        "audit": False,
        **extra,
    })


def _headline(report, deployment, scheme):
    (found,) = [h for h in report["headlines"] if h["deployment"] == deployment and h["scheme"] == scheme]
    return found


@pytest.fixture(scope="module")
def two_clients():
    spec = _spec([{"name": "two", "n_clients": 2}], ["plain", "secagg"], ["server", "participant", "public"],
                 attacks=({"name": "round_difference"}, {"name": "idlg", "options": {"max_evals": 300, "restarts": 1}}))
    return score(spec).to_dict()


def test_mpc_scores_zero_and_plain_scores_one_with_two_clients(two_clients) -> None:
    mpc, plain = _headline(two_clients, "two", "mpc"), _headline(two_clients, "two", "plain")

    assert mpc["leakage"] == 0.0 and mpc["status"] == "not_applicable"
    assert plain["leakage"] > 0.95
    assert all(row["leakage"] == 0.0 for row in two_clients["results"] if row["scheme"] == "mpc")


def test_two_client_secagg_leaks_through_the_subtraction(two_clients) -> None:
    secagg = _headline(two_clients, "two", "secagg")
    (subtraction,) = [r for r in two_clients["results"]
                      if r["scheme"] == "secagg" and r["observer"] == "participant" and r["attack"] == "round_difference"]

    assert secagg["leakage"] > 0.95 and secagg["observer"] == "participant"
    assert subtraction["metrics"]["update_cosine"] > 0.999999 and subtraction["leakage"] > 0.999
    (server,) = [r for r in two_clients["results"]
                 if r["scheme"] == "secagg" and r["observer"] == "server" and r["attack"] == "plaintext"]
    assert server["status"] == "not_applicable" and "no plaintext update" in server["note"]


def test_every_row_is_normalised_and_reconstructions_carry_images(two_clients) -> None:
    for row in two_clients["results"]:
        assert 0.0 <= row["leakage"] <= 1.0
        assert row["status"] in ("ok", "not_applicable")
        assert (row["status"] == "ok") or row["note"]
    shown = [r for r in two_clients["results"] if r["attack"] == "idlg" and r["status"] == "ok"]
    assert shown and all(len(r["images"]["original"][0][0]) == 8 for r in shown)
    assert {r["scheme"] for r in shown} == {"plain", "secagg"}


def test_the_same_seed_gives_the_same_numbers(two_clients) -> None:
    spec = parse_spec(two_clients["spec"])

    again = score(spec).to_dict()

    assert again["results"] == two_clients["results"] and again["headlines"] == two_clients["headlines"]


def test_a_hundred_client_secagg_server_learns_little() -> None:
    spec = _spec([{"name": "hundred", "n_clients": 100}], ["secagg"], ["server", "participant"])

    report = score(spec).to_dict()

    rows = {(r["observer"], r["attack"]): r for r in report["results"] if r["scheme"] == "secagg"}
    assert rows[("server", "plaintext")]["status"] == "not_applicable"
    assert rows[("server", "aggregate")]["leakage"] < 0.2
    assert rows[("participant", "round_difference")]["leakage"] < 0.2
    assert rows[("participant", "round_difference")]["metrics"]["mixed_clients"] == 99


def test_a_logreg_deployment_scores_mpc_from_a_real_secret_shared_run() -> None:
    spec = parse_spec({
        "name": "logreg",
        "task": {"dataset": "breast_cancer", "model": "logreg", "algorithm": "fedsgd", "batch_size": 4, "lr": 0.1,
                 "rounds": 2},
        "deployments": [{"name": "two", "n_clients": 2}],
        "schemes": ["plain"],
        "observers": ["server", "participant"],
        "attacks": [{"name": "round_difference"}],
        "audit": False,
    })
    report = score(spec).to_dict()

    (mpc_cost,) = [c for c in report["costs"] if c["scheme"] == "mpc"]
    assert mpc_cost["mpc_backend"] == "secureml"
    assert mpc_cost["upload_bytes_per_client"] > 0  # the clients' shares of their rows
    assert _headline(report, "two", "mpc")["leakage"] == 0.0
    assert _headline(report, "two", "plain")["leakage"] > 0.95
