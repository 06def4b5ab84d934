"""A team's own pieces, wrong, through ``leakage score``: one line naming the field, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from leakage.cli import main

NETS = '''
from torch import nn


def build(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))


def text(input_shape, num_classes):
    return "not a module"
'''


def _spec(task: str) -> str:
    return f"""
name = "own"
schemes = ["plain"]
observers = ["server"]

[task]
{task}
algorithm = "fedsgd"
batch_size = 1
rounds = 1

[[deployments]]
name = "two"
n_clients = 2

[[attacks]]
name = "round_difference"
"""


DIGITS_MODEL = 'dataset = "digits"\npython_path = ["."]\nmodel = "own_inputs_nets:build"'


def _images(folder: Path, *, corrupt: bool = False, empty: bool = False) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        if empty:
            (folder / name / "notes.txt").write_text("no images here")
            continue
        for index in range(6):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / name / f"{index}.png")
    if corrupt:
        (folder / "b" / "broken.png").write_bytes(b"not a png at all")


def _table(path: Path, rows: list[str]) -> None:
    path.write_text("x,y,label,flag\n" + "\n".join(rows) + "\n")


GOOD_ROWS = [f"{i % 3}.5,{i},{i % 2},{'true' if i % 2 else 'false'}" for i in range(12)]


def _case(tmp_path: Path, case: str) -> str:
    """Write the files of ``case`` into ``tmp_path`` and return its spec's task table."""
    (tmp_path / "own_inputs_nets.py").write_text(NETS)
    if case == "import":
        return 'dataset = "digits"\npython_path = ["."]\nmodel = "no_such_module_here:build"'
    if case == "not-a-module":
        return 'dataset = "digits"\npython_path = ["."]\nmodel = "own_inputs_nets:text"'
    if case in ("checkpoint-keys", "checkpoint-shapes", "checkpoint-unsafe"):
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        state: object = {"1.weight": torch.zeros(10, 64)}
        if case == "checkpoint-shapes":
            state = {"1.weight": torch.zeros(3, 64), "1.bias": torch.zeros(10)}
        if case == "checkpoint-unsafe":
            state = {"weights": net.state_dict(), "code": Path("x")}  # a pickled object weights_only refuses
        torch.save(state, tmp_path / "start.pt")
        return DIGITS_MODEL + '\ncheckpoint = "start.pt"'
    if case in ("folder-empty", "folder-corrupt"):
        _images(tmp_path / "images", corrupt=case == "folder-corrupt", empty=case == "folder-empty")
        return 'dataset = "folder"\ndataset_options = { path = "images", size = [8, 8] }\nmodel = "mlp"'
    rows = list(GOOD_ROWS)
    if case == "csv-missing":
        rows[3] = "1.5,,1,true"
    if case == "csv-text":
        rows[3] = "1.5,abc,1,true"
    if case == "csv-label":
        rows[3] = "1.5,3,7,true"
    if case == "csv-property":
        rows[3] = "1.5,3,1,maybe"
    _table(tmp_path / "table.csv", rows)
    options = 'path = "table.csv", label = "label", property = "flag"'
    if case == "csv-label":
        options += ", num_classes = 2"
    return f'dataset = "csv"\ndataset_options = {{ {options} }}\nmodel = "mlp"'


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("import", "spec.task.model 'no_such_module_here:build': cannot import module 'no_such_module_here'"),
        ("not-a-module", "must return a torch.nn.Module, got str"),
        ("checkpoint-keys", "does not match the model: missing keys ['1.bias']"),
        ("checkpoint-shapes", "'1.weight' has shape (3, 64), the model's is (10, 64)"),
        ("checkpoint-unsafe", "is not a safe state_dict file"),
        ("folder-empty", "dataset_options.path"),
        ("folder-corrupt", "dataset_options.path: cannot read image b/broken.png"),
        ("csv-missing", "dataset_options.path: missing value in row 4 (line 5), column 'y'"),
        ("csv-text", "column 'y' must be a finite number, got 'abc'"),
        ("csv-label", "dataset_options.label column 'label' must hold class indices < dataset_options.num_classes=2"),
        ("csv-property", "dataset_options.property column 'flag' must hold true/false or 1/0, got 'maybe'"),
    ],
)
def test_a_bad_own_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, expected: str
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(_spec(_case(tmp_path, case)))
    out = tmp_path / "report"

    status = main(["score", str(spec), "--out", str(out), "--no-progress"])

    error = capsys.readouterr().err
    assert status == 2
    assert error.count("\n") == 1 and error.startswith("leakage: error: "), error
    assert expected in error, error
    assert "Traceback" not in error
    assert not out.exists()


def test_the_same_files_done_right_score(tmp_path: Path) -> None:
    (tmp_path / "own_inputs_nets.py").write_text(NETS)
    _table(tmp_path / "table.csv", GOOD_ROWS)
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).state_dict(), tmp_path / "start.pt")
    for task in (
        DIGITS_MODEL + '\ncheckpoint = "start.pt"',
        'dataset = "csv"\ndataset_options = { path = "table.csv", label = "label", property = "flag" }\nmodel = "mlp"',
    ):
        spec = tmp_path / "spec.toml"
        spec.write_text(_spec(task))
        assert main(["score", str(spec), "--out", str(tmp_path / "report"), "--no-progress", "--fresh"]) == 0
