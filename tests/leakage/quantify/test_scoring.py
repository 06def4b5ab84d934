"""Scoring through the registries: spec options reach attacks, third-party attacks score, the CSV is the JSON."""

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
import torch
from sklearn.metrics import roc_auc_score

from attacks import ATTACKS, Knowledge, PlaintextAttack, UpdateEstimate
from leakage.cli import main
from leakage.data import load_dataset
from leakage.quantify import (
    CSV_COLUMNS,
    HIDES_AT_MOST,
    SweepCurve,
    SweepPoint,
    parse_spec,
    run_jobs,
    score,
    scored_products,
    split_test_data,
)
from leakage.views import RoundView

_TASK = {"dataset": "digits", "model": "mlp", "model_options": {"hidden": [16], "activation": "sigmoid"},
         "algorithm": "fedsgd", "batch_size": 1, "lr": 0.1, "rounds": 2}


class _ScaledPlaintext(PlaintextAttack):
    """A third party's update-recovery attack: the plaintext uploads times ``scale``."""

    name = "scaled_plaintext"
    is_implicit = False

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = scale

    def _run(self, history: Sequence[RoundView], knowledge: Knowledge | None, *, generator: torch.Generator,
             show_progress: bool) -> UpdateEstimate:
        found = super()._run(history, knowledge, generator=generator, show_progress=show_progress)
        from dataclasses import replace
        return replace(found, attack=self.name,
                       recovered=tuple(replace(item, update=item.update * self.scale) for item in found.recovered))


@pytest.fixture
def third_party_attack() -> Iterator[str]:
    ATTACKS.register("scaled_plaintext")(_ScaledPlaintext)
    yield "scaled_plaintext"
    ATTACKS.unregister("scaled_plaintext")


def test_a_third_party_attack_is_scored_by_leakage_score_with_its_options(third_party_attack, tmp_path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'schemes = ["plain"]\nobservers = ["server"]\naudit = false\n'
        '[task]\nmodel_options = { hidden = [16], activation = "sigmoid" }\n'
        '[[deployments]]\nname = "two"\nn_clients = 2\n'
        f'[[attacks]]\nname = "{third_party_attack}"\noptions = {{ scale = 3.0 }}\n'
    )

    assert main(["score", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 0

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (row,) = [r for r in report["results"] if r["scheme"] == "plain" and r["attack"] == third_party_attack]
    assert row["status"] == "ok" and row["metrics"]["update_cosine"] == pytest.approx(1.0)
    assert row["metrics"]["update_relative_error"] == pytest.approx(2.0)  # |3u - u| / |u|: the option arrived


def test_spec_options_reach_an_update_recovery_attack() -> None:
    def disaggregation(options):
        spec = parse_spec({
            "task": {**_TASK, "batch_size": None, "lr": 0.01, "rounds": 30, "partition": "dirichlet",
                     "partition_options": {"alpha": 0.5}},
            "deployments": [{"name": "six", "n_clients": 6, "clients_per_round": 3}],
            "schemes": ["secagg"], "observers": ["server"], "audit": False,
            "attacks": [{"name": "disaggregation", "options": options}],
        })
        rows = score(spec).to_dict()["results"]
        (row,) = [r for r in rows if r["scheme"] == "secagg" and r["attack"] == "disaggregation"]
        return row

    across_rounds, one_round_windows = disaggregation({}), disaggregation({"window": 1})

    assert across_rounds["status"] == "ok" and across_rounds["metrics"]["update_cosine"] > 0.99
    assert one_round_windows["status"] == "not_applicable"  # a window of one round cannot separate anyone


def test_only_products_with_a_scorer_can_be_named_in_a_spec() -> None:
    assert set(scored_products()) == {"update_estimate", "reconstruction", "membership"}
    with pytest.raises(ValueError, match=r"spec.attacks\[0\].name must be one of .*round_difference"):
        parse_spec({"attacks": [{"name": "property_inference"}]})


@pytest.fixture(scope="module")
def swept():
    spec = parse_spec({
        "task": _TASK, "deployments": [{"name": "two", "n_clients": 2}], "schemes": ["secagg"],
        "observers": ["server", "participant"], "audit": False, "attacks": [{"name": "round_difference"}],
        "sweeps": [{"scheme": "secagg", "n_clients": [2, 5, 20]}],
    })
    return score(spec)


def test_the_csv_holds_every_row_of_the_json(swept) -> None:
    data = swept.to_dict()

    lines = list(csv.DictReader(io.StringIO(swept.to_csv())))

    assert len(lines) == len(data["results"]) and list(lines[0])[: len(CSV_COLUMNS)] == list(CSV_COLUMNS)
    for line, row in zip(lines, data["results"], strict=True):
        for column in CSV_COLUMNS:
            expected = row[column]
            if isinstance(expected, float):
                assert float(line[column]) == expected
            else:
                assert line[column] == ("" if expected is None else str(expected))
        for name, value in row["metrics"].items():
            assert float(line[f"metrics.{name}"]) == value


def test_a_sweep_draws_leakage_against_the_number_of_clients(swept) -> None:
    curves = {curve.observer: curve for curve in swept.sweeps}

    participant = curves["participant"]
    assert [p.n_clients for p in participant.points] == [2, 5, 20]
    assert participant.points[0].leakage > 0.95  # two clients: the subtraction is exact
    assert participant.points[-1].leakage <= HIDES_AT_MOST and participant.hides_from in (5, 20)
    assert all(p.test_accuracy is not None and 0 <= p.test_accuracy <= 1 for p in participant.points)
    assert not [h for h in swept.headlines if h.deployment.startswith("secagg sweep")]  # sweeps stay out


def test_hides_from_is_the_first_size_after_which_no_point_leaks() -> None:
    def curve(leakages):
        points = tuple(SweepPoint(n, n, "a", leak, 0.0, 0.0, None) for n, leak in zip((2, 5, 10, 20), leakages))
        return SweepCurve("s", "secagg", "server", "update_cosine", points)

    assert curve([1.0, 0.1, 0.3, 0.1]).hides_from == 20
    assert curve([1.0, 0.1, 0.2, 0.1]).hides_from == 5
    assert curve([1.0, 0.5, 0.5, 0.9]).hides_from is None


def test_the_held_out_split_depends_on_the_seed_only_and_is_disjoint() -> None:
    digits = load_dataset("digits")
    numbered = replace(digits, inputs=torch.arange(len(digits), dtype=torch.float32).unsqueeze(1))

    train, test = split_test_data(numbered, 0.2, seed=3)
    again, _ = split_test_data(numbered, 0.2, seed=3)
    other, _ = split_test_data(numbered, 0.2, seed=4)

    assert test is not None and len(test) == round(0.2 * len(digits))
    held_out, kept = set(test.inputs.flatten().tolist()), set(train.inputs.flatten().tolist())
    assert not held_out & kept and len(held_out | kept) == len(digits)
    assert torch.equal(train.inputs, again.inputs) and not torch.equal(train.inputs, other.inputs)
    assert split_test_data(numbered, 0.0, seed=3) == (numbered, None)


def test_membership_is_scored_against_the_released_model_through_the_registry() -> None:
    spec = parse_spec({
        "task": {**_TASK, "algorithm": "fedavg", "local_epochs": 30, "batch_size": 4, "lr": 0.5, "rounds": 1,
                 "partition": "dirichlet", "partition_options": {"alpha": 100.0}},
        "deployments": [{"name": "ten", "n_clients": 10}],
        "schemes": ["plain", "secagg"], "observers": ["server", "public"], "audit": False,
        "attacks": [{"name": "loss_threshold"}],
    })

    rows = {(r["scheme"], r["observer"]): r for r in score(spec).to_dict()["results"] if r["metric"] == "auc"}

    server, public = rows[("plain", "server")], rows[("plain", "public")]
    assert server["metrics"]["members"] > 0 and server["metrics"]["non_members"] > 0
    # every candidate's score is kept, and the row's AUC is theirs
    records = server["records"]
    assert records["member"].count(1.0) == server["metrics"]["members"]
    assert len(records["score"]) == server["metrics"]["members"] + server["metrics"]["non_members"]
    assert roc_auc_score(records["member"], records["score"]) == pytest.approx(server["value"], abs=1e-6)
    # the target's own local model fits its records better than the released model does
    # (measured 0.62 against 0.52 on half the held-out records; the other half is the attacker's data)
    assert server["value"] > public["value"] + 0.05 and server["leakage"] > 0.1
    assert public["value"] == public["baseline"] and public["leakage"] == 0.0
    assert rows[("secagg", "server")]["leakage"] == 0.0  # the aggregate is what the released model is
    assert all(r["leakage"] == 0.0 for (scheme, _), r in rows.items() if scheme == "mpc")


def test_lira_and_rmia_rows_calibrate_each_observer_from_the_rounds_it_saw() -> None:
    spec = parse_spec({
        "task": {**_TASK, "model_options": {}, "algorithm": "fedavg", "local_epochs": 2, "batch_size": 10, "lr": 0.3,
                 "rounds": 5, "test_fraction": 0.5},
        "deployments": [{"name": "ten", "n_clients": 10}],
        "schemes": ["plain", "mpc"], "observers": ["server", "participant", "public"], "audit": False,
        "attacks": [{"name": name, "options": {"rounds": "mean", "reference_models": 8, "epochs": 5}}
                    for name in ("lira", "rmia")],
    })

    rows = {(r["scheme"], r["observer"], r["attack"]): r for r in score(spec).to_dict()["results"]
            if r["metric"] == "auc"}

    for attack in ("lira", "rmia"):
        server, public = rows[("plain", "server", attack)], rows[("plain", "public", attack)]
        assert server["status"] == "ok" and server["metrics"]["members"] == 90
        # the server holds client 0's local model of five rounds, each calibrated by reference
        # models trained one round from that round's global model (measured 0.66 / 0.72 against 0.54 / 0.58)
        assert server["value"] > public["value"] + 0.04 and server["leakage"] > 0.05
        assert rows[("mpc", "server", attack)]["value"] == public["value"]  # mpc reveals the released model


def test_a_plugin_module_named_by_the_spec_registers_its_attack_in_every_worker(tmp_path, monkeypatch) -> None:
    (tmp_path / "lab_attacks.py").write_text(
        "from attacks import ATTACKS, PlaintextAttack\n"
        "@ATTACKS.register('lab_plaintext')\n"
        "class LabPlaintext(PlaintextAttack):\n"
        "    is_implicit = False\n"
    )
    assert run_jobs(abs, [-1, -2], workers=2) == [1, 2]  # the worker server now runs, without tmp_path
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        spec = parse_spec({
            "plugins": ["lab_attacks"], "task": _TASK, "deployments": [{"name": "two", "n_clients": 2}],
            "schemes": ["plain"], "observers": ["server"], "audit": False, "attacks": [{"name": "lab_plaintext"}],
        })

        pooled = score(spec, workers=2).to_dict()["results"]

        (row,) = [r for r in pooled if r["scheme"] == "plain" and r["attack"] == "lab_plaintext"]
        assert row["status"] == "ok" and row["metrics"]["update_cosine"] == pytest.approx(1.0)
    finally:
        ATTACKS.unregister("lab_plaintext")


def test_a_plugin_that_cannot_be_imported_is_one_line_naming_it() -> None:
    with pytest.raises(ValueError, match=r"spec.plugins\[0\]: cannot import 'no_such_lab': ModuleNotFoundError"):
        parse_spec({"plugins": ["no_such_lab"]})
