"""The worked example ``examples/own_deployment``: the team's model, data and checkpoint, scored on every backend."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from leakage.models import flatten_parameters, load_checkpoint
from leakage.quantify import AttackSpec, load_spec, preflight, score

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_deployment"


def _numbers(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (r["deployment"], r["scheme"], r["observer"], r["attack"], r["status"], r["value"], r["leakage"])
        for r in report["results"]
    ]


def test_the_spec_resolves_the_teams_own_pieces() -> None:
    spec = load_spec(EXAMPLE / "spec.toml")
    assert spec.task.model == "nets:build"
    assert spec.task.checkpoint == str(EXAMPLE / "start.pt")
    assert spec.task.python_path == (str(EXAMPLE),)
    assert spec.task.dataset_options["path"] == str(EXAMPLE / "images")
    estimate = preflight(spec)  # builds the model, loads the checkpoint, reads the images
    assert estimate.fits


def test_the_checkpoint_is_where_the_clients_start() -> None:
    from leakage import load_dataset
    from leakage.quantify.runner import _settings, plan_jobs
    from leakage.simulation import Simulator

    spec = load_spec(EXAMPLE / "spec.toml")
    job = plan_jobs(spec)[0]
    settings = _settings(spec, job, None)
    dataset = load_dataset("folder", path=str(EXAMPLE / "images"), size=[32, 32])
    model = Simulator(settings, dataset=dataset).build_model(dataset)
    sys.path.insert(0, str(EXAMPLE))
    try:
        from nets import build  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE))
    expected = load_checkpoint(build(dataset.input_shape, dataset.num_classes), EXAMPLE / "start.pt")
    assert torch.equal(flatten_parameters(model), flatten_parameters(expected))


def test_two_workers_give_the_in_process_numbers() -> None:
    """The import path and the checkpoint reach fresh worker processes (``--jobs 2``)."""
    spec = load_spec(EXAMPLE / "spec.toml")
    small = replace(
        spec, schemes=("secagg", "mpc"), audit=None, attacks=(AttackSpec("round_difference"),),
    )
    in_process = score(small, workers=1, show_progress=False).to_dict()
    pooled = score(small, workers=2, show_progress=False).to_dict()
    assert _numbers(in_process) == _numbers(pooled)
    rows = {(r["deployment"], r["observer"]): r for r in in_process["results"] if r["scheme"] == "secagg"}
    assert rows[("two participants", "participant")]["value"] > 0.999  # the peer's update, under secagg


@pytest.mark.slow
def test_the_cli_gives_the_same_report_in_process_with_two_jobs_and_on_ray(tmp_path: Path) -> None:
    reports = {}
    for label, flags in (("local", []), ("jobs", ["--jobs", "2"]), ("ray", ["--backend", "ray", "--jobs", "2"])):
        out = tmp_path / label
        subprocess.run(
            [sys.executable, "-m", "leakage.cli", "score", str(EXAMPLE / "spec.toml"), "--quick", "--out", str(out),
             "--no-progress", *flags],
            check=True, capture_output=True, text=True,
        )
        reports[label] = json.loads((out / "report.json").read_text())
    assert _numbers(reports["local"]) == _numbers(reports["jobs"]) == _numbers(reports["ray"])
