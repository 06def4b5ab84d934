"""``leakage score`` runs the preflight before any folder or job: one line, exit 2, nothing written."""

import pytest

from leakage.cli import main
from leakage.errors import ConfigError
from leakage.quantify import JobStore

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


def _write(tmp_path, text: str):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def _score(tmp_path, text: str, *flags: str) -> int:
    return main(["score", str(_write(tmp_path, text)), "--out", str(tmp_path / "r"), "--no-progress", *flags])


@pytest.mark.parametrize(
    ("old", "new", "start"),
    [
        ("hidden = [16]", "hidden = [-4]", "leakage: error: spec.task.model_options: model 'mlp' with {'hidden': [-4]"),
        ('model = "mlp"', 'model = "lenet"', "leakage: error: spec.task.model_options: model 'lenet' with "),
        ("batch_size = 1", 'batch_size = 1\npartition = "dirichlet"\npartition_options = { alpha = -1 }',
         "leakage: error: spec.task.partition_options: partition 'dirichlet' with {'alpha': -1} fails for "
         "deployment 'two'"),
        ("[[attacks]]", "[scheme_options.secagg]\nthreshold = 3\n\n[[attacks]]",
         "leakage: error: spec.scheme_options.secagg: scheme 'secagg' cannot run deployment 'two' "
         "(2 clients, 2 per round): threshold must be between 2 and the 2 shareholders"),
        ("rounds = 1", "rounds = 1000000000", "leakage: error: spec: too large to run here: an estimated "),
    ],
    ids=["model-options", "model", "partition", "threshold", "rounds"],
)
def test_a_spec_the_preflight_refuses_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, old, new, start) -> None:
    status = _score(tmp_path, SPEC.replace(old, new))

    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.startswith(start) and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "r").exists()


def test_the_bound_says_how_to_override_it(tmp_path, capsys) -> None:
    _score(tmp_path, SPEC.replace("rounds = 1", "rounds = 1000000000"))

    assert capsys.readouterr().err.endswith("or pass --force to skip this bound\n")


def test_force_skips_only_the_bound(tmp_path, capsys) -> None:
    huge = SPEC.replace("rounds = 1", "rounds = 1000000000")

    status = _score(tmp_path, huge.replace("hidden = [16]", "hidden = [-4]"), "--force")

    assert status == 2 and capsys.readouterr().err.startswith("leakage: error: spec.task.model_options: ")
    assert not (tmp_path / "r").exists()


def test_force_lets_a_huge_spec_past_the_preflight(tmp_path, capsys, monkeypatch) -> None:
    def store_reached(*args: object, **kwargs: object) -> JobStore:
        raise ConfigError("the job store was reached")  # stands in for running a billion rounds

    monkeypatch.setattr(JobStore, "open", store_reached)
    huge = SPEC.replace("rounds = 1", "rounds = 1000000000")

    refused = _score(tmp_path, huge)
    refused_err = capsys.readouterr().err
    forced = _score(tmp_path, huge, "--force")
    forced_err = capsys.readouterr().err

    assert refused == forced == 2
    assert refused_err.startswith("leakage: error: spec: too large to run here")
    assert forced_err == "leakage: error: the job store was reached\n"
