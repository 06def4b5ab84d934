"""Where jobs run: in this process, a local pool of worker processes, or Ray tasks.

Every job is independent and returns plain data, so the backend only decides where it
runs; results are keyed by job position, so the same spec gives the same report on any
backend. Ray is optional (``pip install 'leakage[ray]'``).

Long runs survive faults: a job whose worker dies (killed by the out-of-memory killer, a
segfault, ``os._exit``) runs again on a fresh worker, and only that job is charged; a job
that raises is a deterministic failure and is not run again. :func:`execute_jobs` reports
each finished job as it arrives and returns what finished and what failed;
:func:`run_jobs` is the all-or-nothing form that raises the first failure.

This module holds that API, its results and failures, and the bookkeeping every backend
reports to (``_Runner``); jobs run in this process here, on the local worker pool in
:mod:`leakage.quantify._pool`, or as Ray tasks in :mod:`leakage.quantify._ray`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, get_args

from tqdm.auto import tqdm

from leakage.checks import require_bool, require_choice, require_int
from leakage.errors import ConfigError
from leakage.quantify._job_errors import job_error, one_line
from leakage.quantify._pool import run_pool
from leakage.quantify._ray import run_ray

__all__ = ["BACKENDS", "Backend", "JobFailure", "JobRun", "execute_jobs", "failure_error", "run_jobs"]

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = get_args(Backend)
JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobFailure:
    """One job that did not finish: it raised, or its worker died on every attempt."""

    index: int                                  # position in ``jobs``
    label: str                                  # ``describe(job)``
    kind: Literal["error", "worker_died"]       # a Python exception (not retried), or the worker process died
    reason: str                                 # one line: "ValueError: ...", "worker killed by signal 9 (...)"
    attempts: int                               # how many times the job was started
    # the exception the job raised, its remote traceback chained as ``__cause__``; None for a death
    # or when the exception could not be sent back (``reason`` still names its type and message)
    error: BaseException | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the failure as JSON-ready data (everything but the exception object)."""
        return {"index": self.index, "label": self.label, "kind": self.kind, "reason": self.reason,
                "attempts": self.attempts}


@dataclass(frozen=True)
class JobRun(Generic[ResultT]):
    """What :func:`execute_jobs` did: results of the finished jobs, the failures, the retries."""

    results: Mapping[int, ResultT]              # job index -> result, finished jobs only, in index order
    failures: tuple[JobFailure, ...]            # in job order
    retried: tuple[tuple[int, str], ...]        # (job index, reason) of every retry, in the order they happened


def execute_jobs(
    function: Callable[[JobT], ResultT],
    jobs: Sequence[JobT],
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    retries: int = 2,
    stop_on_failure: bool = True,
    on_result: Callable[[int, ResultT], None] | None = None,
    show_progress: bool = False,
    describe: Callable[[JobT], str] = str,
) -> JobRun[ResultT]:
    """Run ``function`` on every job, retrying jobs whose worker died; return what finished and what failed.

    Jobs whose worker process dies (killed, out of memory, a segfault, ``os._exit``) run
    again on a fresh worker, at most ``retries`` more times; each retry is logged as a
    warning and recorded in :attr:`JobRun.retried`; after the last the job is a
    ``"worker_died"`` failure. Only the job whose worker died is charged: jobs in other
    workers go on. A job that raises an exception is deterministic, so it is not run again:
    it is one ``"error"`` failure.

    Args:
        function: a picklable callable, such as a module-level function (worker
            processes import it by name, so it must live in a module they can import:
            an installed package, or a folder on ``sys.path``).
        jobs: the jobs (picklable).
        backend: ``"local"`` (this process when ``workers == 1`` or there is one job,
            else ``workers`` worker processes) or ``"ray"`` (tasks on the Ray cluster at
            ``address``, or on a new, quiet local Ray instance with ``workers`` CPUs when
            ``address`` is ``None``, shut down at the end; when this process is already
            connected to Ray, that cluster runs the tasks and stays up, and ``address`` is
            not used).
        workers: parallel workers, >= 1.
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``); Ray only.
        retries: how many times a job whose worker died runs again, >= 0. In this
            process (``workers == 1`` or one job) nothing can be retried: a death there
            kills the caller too. On Ray, Ray makes the retries inside the cluster
            (``max_retries``) and does not report them: :attr:`JobRun.retried` stays empty
            and a ``"worker_died"`` failure counts ``retries + 1`` attempts.
        stop_on_failure: after the first failure start no new job (jobs already running
            finish, and their results are reported; one whose worker dies now is a failure,
            not retried) and return; ``False`` runs every job.
        on_result: called in this process as ``on_result(index, result)`` as soon as each
            job finishes, in any order, before the next result is awaited (to store it at
            once). What it raises stops the run and is raised.
        show_progress: show a progress bar over finished and failed jobs.
        describe: a job's label, for the progress bar, the log and failures.

    Returns:
        A :class:`JobRun`. Jobs neither in ``results`` nor in ``failures`` never started
        (only after a failure with ``stop_on_failure``).

    Raises:
        ConfigError: an unknown backend, ``workers < 1``, ``retries < 0``, an address
            without Ray, an empty one or one Ray cannot connect to, or Ray requested but
            not installed.
        TypeError: ``function`` cannot be pickled for worker processes (a lambda or a
            local function with ``workers > 1``).
        BaseException: whatever interrupts the run in this process (``KeyboardInterrupt``,
            an exception from ``on_result``): every worker is stopped, and Ray tasks
            cancelled, before it is raised.

    >>> run = execute_jobs(lambda job: 10 // job, [5, 0, 2], stop_on_failure=False)
    >>> dict(run.results)
    {0: 2, 2: 5}
    >>> run.failures[0].kind, run.failures[0].reason, run.failures[0].attempts
    ('error', 'ZeroDivisionError: integer division or modulo by zero', 1)
    """
    require_choice("backend", backend, BACKENDS)
    workers = require_int("workers", workers, minimum=1)
    retries = require_int("retries", retries, minimum=0)
    stop_on_failure = require_bool("stop_on_failure", stop_on_failure)
    if address is not None:
        if backend != "ray":
            raise ConfigError(f"address needs backend 'ray', got backend {backend!r}")
        if not isinstance(address, str) or not address.strip():
            raise ConfigError(f"address must be a Ray cluster address such as 'auto', got {address!r}")
    runner: _Runner[JobT, ResultT] = _Runner(function, jobs, stop_on_failure=stop_on_failure, on_result=on_result,
                                              describe=describe, show_progress=show_progress)
    try:
        if backend == "ray":
            run_ray(runner, workers=workers, address=address, retries=retries)
        elif workers == 1 or len(jobs) <= 1:
            _run_here(runner)
        else:
            run_pool(runner, workers=workers, retries=retries)
    finally:
        runner.bar.close()
    return runner.outcome()


def run_jobs(
    function: Callable[[JobT], ResultT],
    jobs: Sequence[JobT],
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    retries: int = 2,
    show_progress: bool = False,
    describe: Callable[[JobT], str] = str,
) -> list[ResultT]:
    """Run ``function`` on every job and return the results in job order.

    :func:`execute_jobs` with ``stop_on_failure=True``, raising its first failure.

    Args:
        function: a picklable callable, such as a module-level function (worker
            processes import it by name, so it must live in an importable module).
        jobs: the jobs (picklable).
        backend: ``"local"`` or ``"ray"``, as for :func:`execute_jobs`.
        workers: parallel workers, >= 1.
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``); Ray only.
        retries: how many times a job whose worker died runs again (see :func:`execute_jobs`).
        show_progress: show a progress bar over finished jobs.
        describe: a job's label, for the progress bar and for errors.

    Returns:
        ``function(job)`` for every job, in the order of ``jobs`` whatever the backend.

    Raises:
        ConfigError: an unknown backend, ``workers < 1``, ``retries < 0``, an address
            without Ray, an empty one or one Ray cannot connect to, or Ray requested but
            not installed.
        Exception: a job failed. The first failure stops the run (jobs not started yet
            are dropped) and is raised as ``job <label> failed: <Type>: <message>``, chained
            to the original and its remote traceback. It keeps the original type where that
            type can be rebuilt from a message (bad input stays a ``ValueError`` or
            ``FileNotFoundError``, which the CLI reports in one line), else it is a
            ``RuntimeError``; a job whose worker died on every attempt is a ``RuntimeError``
            ``job <label> failed: <reason> after <n> attempts``.

    >>> run_jobs(lambda job: {"double": 2 * job}, [1, 2])
    [{'double': 2}, {'double': 4}]
    """
    run = execute_jobs(function, jobs, backend=backend, workers=workers, address=address, retries=retries,
                       stop_on_failure=True, show_progress=show_progress, describe=describe)
    if run.failures:
        raise failure_error(run.failures[0])
    return [run.results[index] for index in range(len(jobs))]


def failure_error(failure: JobFailure) -> Exception:
    """Return the exception that reports ``failure``, as :func:`run_jobs` raises it.

    A job that raised becomes ``job <label> failed: <Type>: <message>``, of the original
    type where that type can be rebuilt from a message, else a ``RuntimeError``, with the
    original (and its remote traceback) as ``__cause__``. A job whose worker died is a
    ``RuntimeError`` ``job <label> failed: <reason> after <n> attempts``.

    >>> run = execute_jobs(int, ["1", "x"])
    >>> failure_error(run.failures[0])
    ValueError("job x failed: ValueError: invalid literal for int() with base 10: 'x'")
    """
    if failure.error is None:
        attempts = "" if failure.kind == "error" else \
            f" after {failure.attempts} attempt{'' if failure.attempts == 1 else 's'}"
        return RuntimeError(f"job {failure.label} failed: {failure.reason}{attempts}")
    error = job_error(failure.label, failure.error)
    error.__cause__ = failure.error  # as `raise error from failure.error` would, for whoever raises it
    return error


class _Runner(Generic[JobT, ResultT]):
    """The bookkeeping every backend shares: results, failures, retries, the progress bar."""

    def __init__(self, function: Callable[[JobT], ResultT], jobs: Sequence[JobT], *, stop_on_failure: bool,
                 on_result: Callable[[int, ResultT], None] | None, describe: Callable[[JobT], str],
                 show_progress: bool) -> None:
        self.function = function
        self.jobs = jobs
        self.stop_on_failure = stop_on_failure
        self.on_result = on_result
        self.describe = describe
        self.bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not show_progress)
        self.results: dict[int, ResultT] = {}
        self.failures: list[JobFailure] = []
        self.retried: list[tuple[int, str]] = []

    @property
    def is_stopping(self) -> bool:
        """Whether no new job may start: a job failed and the run stops on failure."""
        return self.stop_on_failure and bool(self.failures)

    def label(self, index: int) -> str:
        return self.describe(self.jobs[index])

    def finish(self, index: int, result: ResultT) -> None:
        self.results[index] = result
        self.bar.update()
        if self.on_result is not None:
            self.on_result(index, result)

    def fail(self, index: int, kind: Literal["error", "worker_died"], reason: str, attempts: int,
             error: BaseException | None = None) -> None:
        self.failures.append(JobFailure(index, self.label(index), kind, reason, attempts, error))
        self.bar.update()

    def fail_with(self, index: int, error: BaseException, attempts: int) -> None:
        self.fail(index, "error", one_line(error), attempts, error)

    def retry(self, index: int, reason: str, attempt: int, retries: int) -> None:
        _LOG.warning("job %s: %s; running it again on a fresh worker (attempt %d of %d)",
                     self.label(index), reason, attempt + 1, retries + 1)
        self.retried.append((index, reason))
        self.bar.set_postfix_str(f"{len(self.retried)} retried")

    def outcome(self) -> JobRun[ResultT]:
        return JobRun(
            results=dict(sorted(self.results.items())),
            failures=tuple(sorted(self.failures, key=lambda failure: failure.index)),
            retried=tuple(self.retried),
        )


def _run_here(runner: _Runner[JobT, ResultT]) -> None:
    for index, job in enumerate(runner.jobs):
        if runner.is_stopping:
            return
        runner.bar.set_postfix_str(runner.describe(job))
        try:
            result = runner.function(job)
        except Exception as error:
            runner.fail_with(index, error, attempts=1)
        else:
            runner.finish(index, result)  # outside the try: what on_result raises is not the job's failure
