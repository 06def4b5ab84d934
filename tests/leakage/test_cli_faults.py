"""Long runs survive faults, through the CLI in subprocesses: retried workers, kept jobs, resume, interrupts.

The faults are real: a plugin module (written to a temporary folder and named in the
spec's ``plugins``) registers attacks that SIGKILL their own worker once, always raise,
fail only under ``secagg``, or sleep so that a run can be interrupted mid-way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

_PLUGIN = '''
import os, signal, time
from pathlib import Path
from attacks import ATTACKS, PlaintextAttack

MARKS = Path(os.environ["FAULTS_DIR"])

class _Lab(PlaintextAttack):
    is_implicit = False

@ATTACKS.register("crash_once")
class CrashOnce(_Lab):
    def _run(self, history, knowledge, *, generator, show_progress):
        try:
            os.close(os.open(MARKS / "crashed", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return super()._run(history, knowledge, generator=generator, show_progress=show_progress)
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would

@ATTACKS.register("always_fails")
class AlwaysFails(_Lab):
    def _run(self, history, knowledge, *, generator, show_progress):
        (MARKS / f"ran-{os.getpid()}-{time.monotonic_ns()}").touch()
        raise RuntimeError("this attack always fails")

@ATTACKS.register("fails_under_secagg")
class FailsUnderSecagg(_Lab):
    def _run(self, history, knowledge, *, generator, show_progress):
        if any(key.startswith("masked:") for view in history for key in view.received):
            raise RuntimeError("this attack fails under secagg")
        return super()._run(history, knowledge, generator=generator, show_progress=show_progress)

@ATTACKS.register("slow")
class Slow(_Lab):
    def _run(self, history, knowledge, *, generator, show_progress):
        time.sleep(float(os.environ.get("FAULTS_SLEEP", "0")))
        return super()._run(history, knowledge, generator=generator, show_progress=show_progress)
'''


def _spec(folder: Path, attack: str, *, schemes: str = '["plain", "secagg"]', seeds: str = "[0]") -> Path:
    path = folder / "spec.toml"
    path.write_text(
        f'plugins = ["faults_lab"]\nschemes = {schemes}\nobservers = ["server", "participant"]\naudit = false\n'
        f'seeds = {seeds}\n'
        '[task]\nmodel_options = { hidden = [16], activation = "sigmoid" }\nrounds = 1\n'
        '[[deployments]]\nname = "two"\nn_clients = 2\n'
        '[[deployments]]\nname = "three"\nn_clients = 3\n'
        f'[[attacks]]\nname = "{attack}"\n'
    )
    return path


@pytest.fixture
def lab(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "faults_lab.py").write_text(_PLUGIN)
    (tmp_path / "marks").mkdir()
    return {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "FAULTS_DIR": str(tmp_path / "marks"), "OMP_NUM_THREADS": "1"}


def _leakage(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "leakage.cli", "score", *args, "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def _comparable(out: Path) -> dict[str, Any]:
    report = json.loads((out / "report.json").read_text())
    return {key: report[key] for key in ("results", "headlines", "audits", "sweeps", "failures")} | {
        "costs": [{k: v for k, v in cost.items() if k != "seconds"} for cost in report["costs"]]
    }


def _interruptible() -> None:
    """In the child before exec: Ctrl-C as a terminal delivers it (an ignored SIGINT would be inherited,
    and Python then never installs its KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _started(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "leakage.cli", "score", *args, "--no-progress"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)


def _wait_for_results(store: Path, at_least: int, process: subprocess.Popen[str], timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = len([p for p in store.glob("*.json") if p.name != "manifest.json"]) if store.exists() else 0
        if done >= at_least:
            return done
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {at_least} jobs finished: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError("no job finished in time")


def _on(backend: str, lab: dict[str, str], factory: pytest.TempPathFactory) -> dict[str, str]:
    if backend != "ray":
        return lab
    pytest.importorskip("ray")
    return {**lab, "RAY_TMPDIR": str(factory.mktemp("ray"))}  # a short path: Ray's sockets live there


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_killed_worker_is_retried_and_the_report_equals_an_undisturbed_run(
    backend: str, lab: dict[str, str], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lab = _on(backend, lab, tmp_path_factory)
    spec = _spec(tmp_path, "crash_once")

    disturbed = _leakage(lab, str(spec), "--jobs", "2", "--backend", backend, "--out", str(tmp_path / "disturbed"))
    undisturbed = _leakage(lab, str(spec), "--out", str(tmp_path / "undisturbed"))  # the mark exists: no crash now

    assert disturbed.returncode == 0, disturbed.stderr
    assert undisturbed.returncode == 0, undisturbed.stderr
    assert (Path(lab["FAULTS_DIR"]) / "crashed").exists()  # a worker really died
    assert "Traceback" not in disturbed.stderr
    assert _comparable(tmp_path / "disturbed") == _comparable(tmp_path / "undisturbed")
    run = json.loads((tmp_path / "disturbed" / "report.json").read_text())["run"]
    if backend == "local":  # Ray retries inside its own scheduler, unseen by the driver
        assert run["retried"] == 1 and "retried after their worker died" in disturbed.stdout


def test_a_job_that_raises_is_reported_once_and_never_retried(lab: dict[str, str], tmp_path: Path) -> None:
    spec = _spec(tmp_path, "always_fails", schemes='["plain"]')

    result = _leakage(lab, str(spec), "--jobs", "2", "--out", str(tmp_path / "out"))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stderr.splitlines() if "failed: RuntimeError: this attack always fails" in line]
    ran = list(Path(lab["FAULTS_DIR"]).glob("ran-*"))
    assert failed and len(failed) == len(ran)  # each failing job ran once and is reported once
    assert len({line.split(" failed:")[0] for line in failed}) == len(failed)
    assert not (tmp_path / "out" / "report.json").exists()


def test_keep_going_writes_the_report_with_the_failed_cells_marked(lab: dict[str, str], tmp_path: Path) -> None:
    spec = _spec(tmp_path, "fails_under_secagg")

    result = _leakage(lab, str(spec), "--keep-going", "--out", str(tmp_path / "out"))

    assert result.returncode == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {(f["deployment"], f["scheme"]) for f in report["failures"]} == {("two", "secagg"), ("three", "secagg")}
    failed = {(h["deployment"], h["scheme"]) for h in report["headlines"] if h["status"] == "failed"}
    assert failed == {("two", "secagg"), ("three", "secagg")}
    assert {h["scheme"] for h in report["headlines"] if h["status"] != "failed"} == {"plain", "mpc"}
    html = (tmp_path / "out" / "report.html").read_text()
    assert "this attack fails under secagg" in html and 'class="failed"' in html
    assert result.stderr.count("failed: RuntimeError: this attack fails under secagg") == 2


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_an_interrupted_run_resumes_to_the_same_report_running_only_the_missing_jobs(
    backend: str, lab: dict[str, str], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lab = _on(backend, lab, tmp_path_factory)
    spec = _spec(tmp_path, "slow")
    out = tmp_path / "out"
    slow = {**lab, "FAULTS_SLEEP": "1.0"}

    process = _started(slow, str(spec), "--backend", backend, "--out", str(out))
    _wait_for_results(out / "jobs", 1, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    finished = len([p for p in (out / "jobs").glob("*.json") if p.name != "manifest.json"])

    assert process.returncode == 130, (stderr, f"parent's SIGINT handler: {signal.getsignal(signal.SIGINT)}")
    (line,) = [text for text in stderr.splitlines() if text.startswith("leakage")]  # Ray may log its own warnings
    assert line.startswith("leakage: interrupted: ") and "--resume" in line and "Traceback" not in stderr
    assert not (out / "report.json").exists()
    assert 1 <= finished < 6

    resumed = _leakage(lab, str(spec), "--backend", backend, "--out", str(out), "--resume")
    undisturbed = _leakage(lab, str(spec), "--out", str(tmp_path / "undisturbed"))

    assert resumed.returncode == 0, resumed.stderr
    assert undisturbed.returncode == 0, undisturbed.stderr
    assert f"resuming: {finished} of 6 jobs already finished" in resumed.stdout
    run = json.loads((out / "report.json").read_text())["run"]
    assert run == {"planned": 6, "resumed": finished, "ran": 6 - finished, "retried": 0, "failed": 0}
    assert _comparable(out) == _comparable(tmp_path / "undisturbed")


def test_sigterm_stops_the_run_with_143_and_keeps_the_finished_jobs(lab: dict[str, str], tmp_path: Path) -> None:
    spec = _spec(tmp_path, "slow")
    out = tmp_path / "out"

    process = _started({**lab, "FAULTS_SLEEP": "1.0"}, str(spec), "--jobs", "2", "--out", str(out))
    _wait_for_results(out / "jobs", 1, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "leakage: interrupted: " in stderr
    assert not (out / "report.json").exists()


def test_resume_refuses_a_changed_spec_unless_fresh(lab: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _leakage(lab, str(_spec(tmp_path, "slow")), "--out", str(out)).returncode == 0
    changed = _spec(tmp_path, "slow", seeds="[1]")

    refused = _leakage(lab, str(changed), "--out", str(out), "--resume")
    fresh = _leakage(lab, str(changed), "--out", str(out), "--resume", "--fresh")

    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"leakage: error: --resume: the job store in {out / 'jobs'} was written for another spec; "
        "run with --fresh to discard it and start again"
    ]
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads((out / "report.json").read_text())["run"]["resumed"] == 0
