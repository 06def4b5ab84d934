import json
import subprocess
import sys

import pytest
import torch

from leakage import Transcript
from leakage.cli import main


def _leakage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "leakage.cli", *args], capture_output=True, text=True, timeout=120, check=False)


def test_simulate_prints_one_row_per_round(capsys) -> None:
    status = main(["simulate", "--rounds", "3", "--n-clients", "4", "--no-progress"])

    lines = capsys.readouterr().out.strip().splitlines()
    assert status == 0
    assert lines[1].split() == ["round", "sampled", "arrived", "train", "loss", "|update|", "accuracy"]
    assert [line.split()[0] for line in lines[2:]] == ["0", "1", "2"]
    assert all(0.0 <= float(line.split()[-1]) <= 1.0 for line in lines[2:])


def test_simulate_writes_a_transcript_and_a_summary(tmp_path, capsys) -> None:
    status = main(["simulate", "--rounds", "2", "--n-clients", "3", "--no-progress", "--seed", "5",
                   "--option", "model.hidden=(8,)", "--out", str(tmp_path)])

    assert status == 0
    transcript = Transcript.load(tmp_path / "transcript.pt")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["seed"] == 5 and summary["settings"]["model_options"] == {"hidden": [8]}
    assert "torch" in summary["environment"]
    assert len(summary["rounds"]) == len(transcript.rounds) == 2
    assert not list(tmp_path.glob(".*partial"))
    assert torch.equal(transcript.final_params, transcript.rounds[-1].params_after)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'; choose one of: adult, binary_features, breast_cancer"),
        (["--model", "vgg"], "unknown model 'vgg'; choose one of: convnet, lenet, logreg, mlp, resnet18"),
        (["--scheme", "magic"], "unknown scheme 'magic'; choose one of:"),
        (["--partition", "shards"], "unknown partition 'shards'; choose one of: dirichlet, iid, property, quantity"),
        (["--clients-per-round", "20"], "clients_per_round must be <= n_clients (10), got 20"),
        (["--lr", "-1"], "lr must be a finite number > 0, got -1.0"),
        (["--rounds", "0"], "rounds must be an integer >= 1, got 0"),
        (["--partition", "dirichlet", "--option", "partition.alpha=0"], "alpha"),
        (["--option", "nonsense"], "--option must look like SECTION.KEY=VALUE"),
        (["--option", "model.depth=3"], "unknown option 'depth' for model 'mlp'"),
        (["--n-clients", "5000"], "n_clients"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_code_2(args, message, capsys) -> None:
    status = main(["simulate", "--no-progress", *args])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert message in captured.err


def test_a_real_process_exits_2_without_traceback() -> None:
    result = _leakage("simulate", "--no-progress", "--dataset", "imagenet")

    assert result.returncode == 2
    assert result.stderr.startswith("leakage: error: unknown dataset 'imagenet'")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_argparse_errors_also_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--rounds", "many"])

    assert exit_info.value.code == 2 and "invalid int value" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "expected"), [("datasets", "digits"), ("models", "lenet"), ("schemes", "plain"), ("partitions", "dirichlet")])
def test_listing_commands_print_registered_names(command, expected, capsys) -> None:
    assert main([command]) == 0
    assert expected in capsys.readouterr().out.split()


def test_the_installed_console_script_runs() -> None:
    import shutil

    executable = shutil.which("leakage")
    assert executable is not None, "pip install -e . installs the `leakage` command"
    result = subprocess.run([executable, "simulate", "--rounds", "1", "--n-clients", "2", "--no-progress"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_a_composed_scheme_takes_options_per_stage_and_is_saved(tmp_path, capsys) -> None:
    status = main(["simulate", "--rounds", "2", "--n-clients", "4", "--model", "logreg", "--no-progress",
                   "--scheme", "compression,secagg", "--option", "scheme.compression.keep=0.2",
                   "--option", "scheme.secagg.clip_range=0.5", "--out", str(tmp_path)])

    assert status == 0
    assert "scheme compression,secagg" in capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["scheme"] == "compression,secagg"
    assert summary["settings"]["scheme_options"] == {"compression": {"keep": 0.2}, "secagg": {"clip_range": 0.5}}


def test_schemes_lists_protocols_and_client_mechanisms(capsys) -> None:
    assert main(["schemes"]) == 0

    out = capsys.readouterr().out
    assert "secagg+  (protocol)" in out and "compression  (client mechanism" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scheme", "dp,secagg"], "scheme 'dp' aggregates by itself"),
        (["--scheme", "secagg", "--option", "scheme.ring_bits=16"], "ring_bits=16 is too small"),
        (["--client-sampling", "sometimes"], "client_sampling must be one of fixed, poisson"),
        (["--scheme", "secagg++"], "unknown scheme 'secagg++'; choose one of"),
    ],
)
def test_bad_scheme_settings_exit_2_with_one_line(args: list[str], message: str, capsys) -> None:
    status = main(["simulate", "--no-progress", "--rounds", "1", *args])

    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and message in err[0]


def test_an_aborted_round_is_shown_in_the_table(capsys) -> None:
    status = main(["simulate", "--no-progress", "--rounds", "1", "--model", "logreg", "--scheme", "secagg",
                   "--option", "scheme.threshold=10", "--dropout", "0.3"])

    assert status == 0
    assert "aborted: advertise keys: only 8 clients remain" in capsys.readouterr().out


def test_top_level_help_and_import_leakage_never_import_torch() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, contextlib, io\n"
        "import leakage\n"
        "assert 'torch' not in sys.modules, 'import leakage imported torch'\n"
        "from leakage.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0\n"
        "assert 'simulate' in out.getvalue() and 'torch' not in sys.modules, 'leakage --help imported torch'\n"
        "leakage.RoundView  # a public name still loads on first use\n"
        "assert 'torch' in sys.modules\n"
    )

    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
