"""Job functions for test_retries.py, in a module worker processes can import by name.

Tests put this folder on ``sys.path`` (worker processes and Ray workers import ``_jobs``);
a test module itself is imported by pytest under a name no other process can import.
Each call appends the worker's pid to ``<folder>/calls-<value>``, so a test counts attempts
and sees which process ran a job.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

_PATIENCE_SECONDS = 60.0  # a job that waits for another gives up after this, so a broken test fails instead of hanging


class Job(NamedTuple):
    action: str   # what the job does before it returns 2 * value (see run)
    folder: str   # the test's tmp_path
    value: int


def run(job: Job) -> int:
    """Do ``job.action``, then return ``2 * job.value``.

    Actions: ``double`` (nothing else); ``kill_once`` / ``raise_once`` (SIGKILL its own
    worker / raise ValueError the first time only); ``kill_always``, ``exit_always`` (exit
    code 3); ``after_kill`` (wait until some job killed its worker); ``after_worker_exit``
    (wait until the process that ran the job of value - 1 has exited); ``after_next_starts``
    (wait until the job of value + 1 has started); ``block`` (wait
    until the folder holds ``release``); ``interrupt_self`` (send itself SIGINT).
    """
    folder = Path(job.folder)
    with open(folder / f"calls-{job.value}", "a") as calls:
        calls.write(f"{os.getpid()}\n")
    if job.action == "kill_once" and _first_time(folder / f"killed-{job.value}"):
        os.kill(os.getpid(), signal.SIGKILL)
    if job.action == "kill_always":
        os.kill(os.getpid(), signal.SIGKILL)
    if job.action == "exit_always":
        os._exit(3)
    if job.action == "raise_once" and _first_time(folder / f"raised-{job.value}"):
        raise ValueError(f"job {job.value} raised")
    if job.action == "after_kill":
        _wait_for(lambda: any(folder.glob("killed-*")))
    if job.action == "after_worker_exit":
        _wait_for(lambda: (folder / f"calls-{job.value - 1}").exists())
        pid = int((folder / f"calls-{job.value - 1}").read_text().split()[0])
        _wait_for(lambda: not _is_running(pid))
    if job.action == "after_next_starts":
        _wait_for(lambda: (folder / f"calls-{job.value + 1}").exists())
    if job.action == "block":
        _wait_for(lambda: (folder / "release").exists())
    if job.action == "interrupt_self":
        os.kill(os.getpid(), signal.SIGINT)
    return 2 * job.value


def calls(folder: Path, value: int) -> int:
    """How many times the job of ``value`` started."""
    path = folder / f"calls-{value}"
    return len(path.read_text().split()) if path.exists() else 0


def _first_time(marker: Path) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _PATIENCE_SECONDS
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
