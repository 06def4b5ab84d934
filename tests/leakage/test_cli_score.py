import json

import pytest

from leakage.cli import main

SPEC = """
name = "tiny"
schemes = ["plain", "secagg"]
observers = ["server", "participant", "public"]

[task]
dataset = "digits"
model = "mlp"
model_options = { hidden = [16], activation = "sigmoid" }
algorithm = "fedsgd"
batch_size = 1
rounds = 1

[[deployments]]
name = "two"
n_clients = 2

[[attacks]]
name = "round_difference"

[audit]
trials = 8
"""


def _write(tmp_path, text: str = SPEC):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_score_writes_both_reports_and_prints_the_headline_table(tmp_path, capsys) -> None:
    out = tmp_path / "report"

    status = main(["score", str(_write(tmp_path)), "--out", str(out), "--quick", "--no-progress"])

    printed = capsys.readouterr().out.splitlines()
    report = json.loads((out / "report.json").read_text())
    assert status == 0
    assert report["schema_version"] == 1 and report["quick"] is True and report["spec"]["name"] == "tiny"
    assert {h["scheme"] for h in report["headlines"]} == {"plain", "secagg", "mpc"}
    assert set(report["timings"]) >= {"simulate", "attacks", "audit", "total"}
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert printed[1].split()[:4] == ["deployment", "clients", "scheme", "leakage"]
    assert any(line.split()[:4] == ["two", "2", "mpc", "0.00"] for line in printed)
    assert not list(out.glob(".*partial"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "spark"], "--backend must be one of local, ray, got 'spark'"),
        (["--jobs", "0"], "--jobs must be an integer >= 1, got 0"),
        (["--address", "auto"], "--address needs --backend ray"),
    ],
)
def test_bad_score_options_are_one_line_and_exit_2(tmp_path, capsys, args, message) -> None:
    status = main(["score", str(_write(tmp_path)), "--no-progress", "--out", str(tmp_path / "r"), *args])

    captured = capsys.readouterr()
    assert status == 2 and captured.err.count("\n") == 1 and message in captured.err
    assert not (tmp_path / "r").exists()


def test_a_wrong_spec_field_is_named_and_nothing_is_written(tmp_path, capsys) -> None:
    status = main(["score", str(_write(tmp_path, SPEC.replace("n_clients = 2", "n_clients = 1"))),
                   "--out", str(tmp_path / "r"), "--no-progress"])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.err == "leakage: error: spec.deployments[0].n_clients must be an integer >= 2, got 1\n"
    assert not (tmp_path / "r").exists()


def test_an_out_path_that_is_a_file_is_refused(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep me")

    status = main(["score", str(_write(tmp_path)), "--out", str(blocker), "--no-progress"])

    assert status == 2 and "--out must be a folder" in capsys.readouterr().err
    assert blocker.read_text() == "keep me"


def test_attacks_and_datasets_are_listed(capsys) -> None:
    assert main(["attacks"]) == 0
    attacks = capsys.readouterr().out
    assert main(["datasets"]) == 0
    datasets = capsys.readouterr().out.split()

    assert "round_difference  (runs as a participant (or a coalition of colluding participants))" in attacks
    assert "idlg  (runs as any observer holding the target's plaintext upload)" in attacks
    assert {"adult", "digits"} <= set(datasets)
