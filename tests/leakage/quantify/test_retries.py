"""execute_jobs survives faults: a dead worker's job runs again, no other job is charged, errors are not rerun."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from leakage.errors import ConfigError
from leakage.quantify.backends import JobFailure, execute_jobs, run_jobs

_KILLED = "worker killed by signal 9 (SIGKILL: out of memory?)"


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The job functions' module, importable by name in worker processes (they get this sys.path)."""
    here = Path(__file__).parent
    monkeypatch.syspath_prepend(str(here))
    module = importlib.import_module("_jobs")
    assert Path(module.__file__ or "").parent == here  # not another folder's _jobs
    return module


def _label(job: Any) -> str:
    return f"{job.action}/{job.value}"


def test_a_killed_worker_s_job_runs_again_and_no_other_job_is_charged(
    jobs: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # "after_kill" is running in the other worker when "kill_once" kills its own
    job_list = [jobs.Job("kill_once", str(tmp_path), 1), jobs.Job("after_kill", str(tmp_path), 2)]
    job_list += [jobs.Job("double", str(tmp_path), value) for value in (3, 4, 5)]
    seen: list[tuple[int, int]] = []

    with caplog.at_level(logging.WARNING, logger="leakage.quantify.backends"):
        run = execute_jobs(jobs.run, job_list, workers=2, describe=_label,
                           on_result=lambda index, result: seen.append((index, result)))

    assert dict(run.results) == {0: 2, 1: 4, 2: 6, 3: 8, 4: 10}
    assert run.failures == ()
    assert run.retried == ((0, _KILLED),)
    assert [jobs.calls(tmp_path, value) for value in (1, 2, 3, 4, 5)] == [2, 1, 1, 1, 1]
    assert sorted(seen) == sorted(run.results.items())  # every finished job reported exactly once
    [record] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert record.getMessage() == f"job kill_once/1: {_KILLED}; running it again on a fresh worker (attempt 2 of 3)"


@pytest.mark.parametrize(("action", "reason"), [("kill_always", _KILLED), ("exit_always", "worker exited with code 3")])
def test_a_job_whose_worker_always_dies_fails_after_retries_plus_one_attempts(
    jobs: ModuleType, tmp_path: Path, action: str, reason: str
) -> None:
    job_list = [jobs.Job(action, str(tmp_path), 1), jobs.Job("double", str(tmp_path), 2)]

    run = execute_jobs(jobs.run, job_list, workers=2, retries=1, describe=_label)

    assert run.failures == (JobFailure(0, f"{action}/1", "worker_died", reason, attempts=2),)
    assert run.retried == ((0, reason),)
    assert jobs.calls(tmp_path, 1) == 2
    assert dict(run.results) == {1: 4}  # started with it, so it finishes and is kept


def test_a_job_that_raises_fails_once_and_is_not_run_again(jobs: ModuleType, tmp_path: Path) -> None:
    # "raise_once" would succeed if it ran again. "after_worker_exit" finishes only once the
    # raising job's worker has exited, which it does when the run stops after the failure.
    job_list = [jobs.Job("raise_once", str(tmp_path), 1), jobs.Job("after_worker_exit", str(tmp_path), 2)]
    job_list += [jobs.Job("double", str(tmp_path), value) for value in (3, 4)]
    seen: list[tuple[int, int]] = []

    run = execute_jobs(jobs.run, job_list, workers=2, describe=_label,
                       on_result=lambda index, result: seen.append((index, result)))

    [failure] = run.failures
    assert (failure.index, failure.label, failure.kind, failure.attempts) == (0, "raise_once/1", "error", 1)
    assert failure.reason == "ValueError: job 1 raised"
    assert isinstance(failure.error, ValueError)
    assert "raise ValueError" in str(failure.error.__cause__)  # the traceback from the worker
    assert run.retried == ()
    assert jobs.calls(tmp_path, 1) == 1
    assert dict(run.results) == {1: 4} and seen == [(1, 4)]  # the running job finished and was reported
    assert jobs.calls(tmp_path, 3) == jobs.calls(tmp_path, 4) == 0  # no new job started after the failure


@pytest.mark.parametrize("workers", [1, 2])
def test_without_stop_on_failure_every_other_job_runs(jobs: ModuleType, tmp_path: Path, workers: int) -> None:
    job_list = [jobs.Job("double", str(tmp_path), 1), jobs.Job("raise_once", str(tmp_path), 2)]
    job_list += [jobs.Job("double", str(tmp_path), value) for value in (3, 4)]

    run = execute_jobs(jobs.run, job_list, workers=workers, stop_on_failure=False)

    assert dict(run.results) == {0: 2, 2: 6, 3: 8}
    assert [(failure.index, failure.kind, failure.attempts) for failure in run.failures] == [(1, "error", 1)]
    assert jobs.calls(tmp_path, 2) == 1


def test_in_this_process_a_failure_stops_the_run(jobs: ModuleType, tmp_path: Path) -> None:
    job_list = [jobs.Job("double", str(tmp_path), 1), jobs.Job("raise_once", str(tmp_path), 2),
                jobs.Job("double", str(tmp_path), 3)]

    run = execute_jobs(jobs.run, job_list, workers=1)

    assert dict(run.results) == {0: 2}
    assert [failure.to_dict() for failure in run.failures] == [
        {"index": 1, "label": str(job_list[1]), "kind": "error", "reason": "ValueError: job 2 raised", "attempts": 1},
    ]
    assert jobs.calls(tmp_path, 3) == 0


def test_run_jobs_raises_a_worker_death_naming_the_job(jobs: ModuleType, tmp_path: Path) -> None:
    job_list = [jobs.Job("kill_always", str(tmp_path), 1), jobs.Job("double", str(tmp_path), 2)]

    with pytest.raises(RuntimeError, match=rf"^job kill_always/1 failed: {re.escape(_KILLED)} after 2 attempts$"):
        run_jobs(jobs.run, job_list, workers=2, retries=1, describe=_label)


def test_workers_ignore_ctrl_c(jobs: ModuleType, tmp_path: Path) -> None:
    job_list = [jobs.Job("interrupt_self", str(tmp_path), value) for value in (1, 2)]

    run = execute_jobs(jobs.run, job_list, workers=2)

    assert dict(run.results) == {0: 2, 1: 4} and run.retried == ()


def _children() -> set[int]:
    """Live processes whose parent is this process or the fork server, less the fork server and resource tracker."""
    helpers = {multiprocessing.forkserver._forkserver._forkserver_pid,
               multiprocessing.resource_tracker._resource_tracker._pid}
    parents = {os.getpid()} | helpers
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # exited meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) in parents:
                found.add(int(entry.name))
    return found - helpers


def test_an_interrupt_stops_every_worker(jobs: ModuleType, tmp_path: Path) -> None:
    # "block" never finishes by itself: the interrupt, once it runs, must stop its worker
    job_list = [jobs.Job("after_next_starts", str(tmp_path), 1), jobs.Job("block", str(tmp_path), 2)]
    job_list += [jobs.Job("double", str(tmp_path), value) for value in (3, 4)]
    before = _children() if Path("/proc").is_dir() else set()

    def interrupt(index: int, result: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute_jobs(jobs.run, job_list, workers=2, on_result=interrupt)

    assert multiprocessing.active_children() == []
    if Path("/proc").is_dir():
        assert _children() - before == set()
    assert jobs.calls(tmp_path, 2) == 1  # it was running


def test_retries_must_be_a_count() -> None:
    with pytest.raises(ConfigError, match=r"^retries must be an integer >= 0, got -1$"):
        execute_jobs(str, [1], retries=-1)


# Ray runs both tests below on one local instance this process connects to (Ray retries
# dead workers itself). Kept last: the instance lives until the module ends.


@pytest.fixture(scope="module")
def connected_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
        # Ray's workers inherit the environment of the processes ray.init starts: they find _jobs
        patch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_reruns_a_task_whose_worker_was_killed(connected_ray: Any, jobs: ModuleType, tmp_path: Path) -> None:
    job_list = [jobs.Job("kill_once", str(tmp_path), 1), jobs.Job("double", str(tmp_path), 2)]

    run = execute_jobs(jobs.run, job_list, backend="ray", workers=2)

    assert dict(run.results) == {0: 2, 1: 4}
    assert run.failures == ()
    assert jobs.calls(tmp_path, 1) == 2 and jobs.calls(tmp_path, 2) == 1


def test_ray_does_not_rerun_a_task_that_raised(connected_ray: Any, jobs: ModuleType, tmp_path: Path) -> None:
    job_list = [jobs.Job("raise_once", str(tmp_path), 1), jobs.Job("double", str(tmp_path), 2)]

    run = execute_jobs(jobs.run, job_list, backend="ray", workers=2, stop_on_failure=False, describe=_label)

    assert run.failures == (JobFailure(0, "raise_once/1", "error", "ValueError: job 1 raised", attempts=1),)
    assert dict(run.results) == {1: 4}
    assert jobs.calls(tmp_path, 1) == 1
