"""Bad recordings through ``leakage score --recording``: one line naming the file and field, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from leakage import simulate
from leakage.cli import main
from leakage.recording import record_transcript


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    transcript = simulate(n_clients=3, rounds=2, algorithm="fedsgd", batch_size=1, scheme="plain", model="logreg")
    return record_transcript(transcript, tmp_path_factory.mktemp("good") / "run", canaries=(0,), recorded=(0, 1))


@pytest.fixture()
def copy(recorded: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(recorded, tmp_path / "run"))


class _Payload:
    """An object whose unpickling would run code: ``weights_only`` loading must refuse it."""

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (print, ("unsafe code ran",))


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _missing_round(run: Path) -> None:
    shutil.rmtree(run / "rounds" / "0001")


def _wrong_shape(run: Path) -> None:
    path = run / "rounds" / "0000" / "global_after.pt"
    state = torch.load(path, weights_only=True)
    state["1.weight"] = torch.zeros(3, 3)
    torch.save(state, path)


def _unsafe_pickle(run: Path) -> None:
    path = run / "clients" / "1" / "rounds" / "0000" / "local.pt"
    torch.save({"1.weight": _Payload()}, path)


def _participants_disagree(run: Path) -> None:
    path = run / "rounds" / "0000" / "round.json"
    data = json.loads(path.read_text())
    _edit_json(path, participants=data["participants"][:-1], weights=None)


def _canary_never_took_part(run: Path) -> None:
    folder = run / "clients" / "7"
    folder.mkdir()
    (folder / "client.json").write_text(json.dumps({"client_id": 7, "node": "7", "canary": True, "data_indices": [1]}))


def _client_left_out(run: Path) -> None:
    path = run / "rounds" / "0001" / "round.json"
    data = json.loads(path.read_text())
    kept = [n for n in data["participants"] if n != "1"]
    _edit_json(path, participants=kept, weights={n: w for n, w in data["weights"].items() if n != "1"})
    (run / "rounds" / "0001" / "server" / "upload-1.pt").unlink()


CASES = {
    "missing round": (_missing_round, r"^rounds/0001: missing \(recording\.json: rounds says 2 round"),
    "wrong shape": (_wrong_shape, r"^rounds/0000/global_after\.pt: '1\.weight' has shape \(3, 3\), the model's is"),
    "unsafe pickle": (_unsafe_pickle, r"^clients/1/rounds/0000/local\.pt: not a safe state_dict file: weights_only loading refused it"),
    "participants disagree with uploads": (
        _participants_disagree, r"^rounds/0000/round\.json: participants \[.*\] disagree with the uploads in rounds/0000/server/"
    ),
    "participant left out of the server's list": (
        _client_left_out, r"^clients/1/rounds/0001/round\.json: this client \(node '1'\) trained .* participants"
    ),
    "canary never took part": (
        _canary_never_took_part, r"^clients/7/client\.json: canary: client 7 never took part \(no round lists node '7'"
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_recording_is_one_line_naming_file_and_field(
    case: str, copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spoil, message = CASES[case]
    spoil(copy)
    out = tmp_path / "report"
    assert main(["score", "--recording", str(copy), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("leakage: error: ")
    assert __import__("re").search(message, lines[0].removeprefix("leakage: error: ")), lines[0]
    assert "unsafe code ran" not in captured.out
    assert not out.exists()


def test_a_good_recording_scores_and_is_marked(recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["score", "--recording", str(recorded), "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["source"] == "recording"
    assert report["recording"]["canaries"] == [0] and report["recording"]["recorded"] == [0, 1]
    assert {(r["observer"], r["attack"]) for r in report["results"]} >= {
        ("server", "plaintext"), ("participant", "round_difference"), ("public", "idlg")
    }
    plaintext = next(r for r in report["results"] if r["attack"] == "plaintext")
    assert plaintext["value"] == pytest.approx(1.0, abs=1e-5)
    assert "Scored from a recording of a real run" in (out / "report.html").read_text()
    assert "canary client 0" in capsys.readouterr().out


@pytest.mark.parametrize("flag", [["--jobs", "2"], ["--quick"], ["--resume"]])
def test_flags_of_simulated_runs_are_refused(recorded: Path, flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--recording", str(recorded), *flag]) == 2
    assert "does not apply with --recording" in capsys.readouterr().err


def test_a_recording_without_canaries_has_nothing_to_score(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(recorded, tmp_path / "run"))
    _edit_json(run / "clients" / "0" / "client.json", canary=False)
    assert main(["score", "--recording", str(run), "--out", str(tmp_path / "out")]) == 2
    assert "names no canary client" in capsys.readouterr().err


def test_an_observer_the_recording_lacks_says_so(recorded: Path) -> None:
    from leakage.quantify import AttackSpec, DeploymentSpec, score_recording

    spec = DeploymentSpec(observers=("eavesdropper", "participant"), attacks=(AttackSpec("round_difference"),))
    rows = [result.row for result in score_recording(recorded, spec).results]
    eavesdropper = [row for row in rows if row.observer == "eavesdropper"]
    assert eavesdropper and all(
        row.status == "not_applicable" and row.note == "the recording holds no view of the eavesdropper (eavesdropper)"
        for row in eavesdropper
    )
    assert any(row.observer == "participant" and row.status == "ok" for row in rows)


def test_an_active_server_cannot_be_replayed_on_a_recording(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "active.toml"
    spec.write_text('threat = "active"\nobservers = ["server"]\n')
    assert main(["score", "--recording", str(recorded), str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("leakage: error: spec.observers: malicious_server") and "\n" not in err
