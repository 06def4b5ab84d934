"""Where jobs run: in this process, a local pool of worker processes, or Ray tasks.

Every job is independent and returns plain data, so the backend only decides where it
runs; results are keyed by job position, so the same spec gives the same report on any
backend. Ray is optional (``pip install 'leakage[ray]'``).

Long runs survive faults: a job whose worker dies (killed by the out-of-memory killer, a
segfault, ``os._exit``) runs again on a fresh worker, and only that job is charged; a job
that raises is a deterministic failure and is not run again. :func:`execute_jobs` reports
each finished job as it arrives and returns what finished and what failed;
:func:`run_jobs` is the all-or-nothing form that raises the first failure.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import signal
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, Literal, TypeVar, get_args

from tqdm.auto import tqdm

from leakage.checks import require_bool, require_choice, require_int
from leakage.errors import ConfigError

__all__ = ["BACKENDS", "Backend", "JobFailure", "JobRun", "execute_jobs", "failure_error", "run_jobs"]

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = get_args(Backend)
JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")

_LOG = logging.getLogger(__name__)

# The object store only carries jobs and their small results; Ray's default reserves 30% of RAM.
_RAY_OBJECT_STORE_BYTES = 128 * 1024 * 1024
# How long a stopped worker may take to exit before it is killed: it only has to leave its loop.
_EXIT_GRACE_SECONDS = 5.0
_TERMINATE_GRACE_SECONDS = 1.0


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
            _run_ray(runner, workers=workers, address=address, retries=retries)
        elif workers == 1 or len(jobs) <= 1:
            _run_here(runner)
        else:
            _run_pool(runner, workers=workers, retries=retries)
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
    error = _job_error(failure.label, failure.error)
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
        self.fail(index, "error", _one_line(error), attempts, error)

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


# -- the local pool ------------------------------------------------------------------------
#
# concurrent.futures.ProcessPoolExecutor cannot say which job killed a worker: one death
# breaks the pool and loses every result. Here each worker runs one job at a time over its
# own pipe, so a worker's death is charged to the job it was running, and to no other.


@dataclass
class _Worker:
    process: Any                                # a multiprocessing Process of the pool's context
    connection: Connection                      # this end of its pipe: jobs out, replies in
    index: int | None = None                    # the job it is running, None while idle


def _run_pool(runner: _Runner[JobT, ResultT], *, workers: int, retries: int) -> None:
    try:
        function_bytes = pickle.dumps(runner.function, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise TypeError(f"function must be picklable to run in worker processes (define it at module level), "
                        f"got {runner.function!r}: {error}") from error
    context = _pool_context(runner.function)
    capacity = min(workers, len(runner.jobs))
    pending = deque(range(len(runner.jobs)))
    attempts = [0] * len(runner.jobs)
    started: list[Any] = []                     # every process, for the final clean-up
    busy: list[_Worker] = []
    idle: list[_Worker] = []

    def start_worker() -> _Worker:
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(target=_serve_jobs, args=(theirs, function_bytes),
                                  name=f"leakage-worker-{len(started)}")
        started.append(process)
        process.start()
        theirs.close()  # the worker holds the only other end: its death reads as end of file here
        return _Worker(process, ours)

    def assign(index: int) -> None:
        try:
            job_bytes = pickle.dumps(runner.jobs[index], protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            runner.fail_with(index, error, attempts=1)
            return
        while idle and not idle[-1].process.is_alive():  # died while idle: charge no job, drop it
            idle.pop().connection.close()
        worker = idle.pop() if idle else start_worker()
        attempts[index] += 1
        worker.index = index
        busy.append(worker)
        try:
            worker.connection.send_bytes(job_bytes)
        except OSError:
            pass  # it died before reading the job: its sentinel says so, and the job is charged below

    def collect(worker: _Worker) -> None:
        index = worker.index
        assert index is not None
        busy.remove(worker)
        reply = _receive(worker.connection)
        if reply is not None:
            worker.index = None
            idle.append(worker)
            _report_reply(runner, index, reply, attempts[index])
            return
        worker.connection.close()
        reason = _death_reason(_reap(worker.process))
        if attempts[index] <= retries and not runner.is_stopping:
            runner.retry(index, reason, attempts[index], retries)
            pending.appendleft(index)  # next to start, on a fresh worker
        else:
            runner.fail(index, "worker_died", reason, attempts[index])

    try:
        while True:
            while pending and len(busy) < capacity and not runner.is_stopping:
                assign(pending.popleft())
            if not pending or runner.is_stopping:
                for worker in idle:  # no job left for them: let them exit now
                    worker.connection.close()
                idle.clear()
            if not busy:
                break
            ready = set(wait([worker.connection for worker in busy] + [worker.process.sentinel for worker in busy]))
            for worker in [worker for worker in busy if {worker.connection, worker.process.sentinel} & ready]:
                collect(worker)
    except BaseException:
        _stop_processes(started, grace_seconds=0.0)  # interrupted: stop every worker, then re-raise
        raise
    for worker in idle:
        worker.connection.close()
    _stop_processes(started, grace_seconds=_EXIT_GRACE_SECONDS)


def _receive(connection: Connection) -> bytes | None:
    """Return a worker's reply, or None when its pipe is closed (the worker died)."""
    try:
        if connection.poll():
            return connection.recv_bytes()
    except (EOFError, OSError):
        pass
    return None


def _report_reply(runner: _Runner[JobT, ResultT], index: int, reply: bytes, attempts: int) -> None:
    try:
        message = pickle.loads(reply)
    except Exception as error:  # a result whose class this process cannot rebuild
        runner.fail(index, "error", f"the result could not be read: {_one_line(error)}", attempts, error)
        return
    if message[0] == "ok":
        runner.finish(index, message[1])
        return
    _, reason, remote_traceback, error_bytes = message
    runner.fail(index, "error", reason, attempts, _load_error(error_bytes, remote_traceback))


def _reap(process: Any) -> int | None:
    """Wait for a worker whose pipe closed to exit (killing it if it lingers); return its exit code."""
    process.join(_EXIT_GRACE_SECONDS)
    if process.is_alive():  # closed its pipe but lives on: it cannot serve, so it is ended
        process.kill()
        process.join()
    exitcode: int | None = process.exitcode
    return exitcode


def _death_reason(exitcode: int | None) -> str:
    """Say in one line how a worker died, from its exit code (``-N``: killed by signal N)."""
    if exitcode is None:
        return "worker stopped answering"
    if exitcode >= 0:
        return f"worker exited with code {exitcode}"
    number = -exitcode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "unknown signal"
    hint = ": out of memory?" if number == signal.SIGKILL else ""  # what the OOM killer sends
    return f"worker killed by signal {number} ({name}{hint})"


def _stop_processes(processes: Sequence[Any], *, grace_seconds: float) -> None:
    """Wait up to ``grace_seconds`` for each worker to exit, then terminate, then kill what is left."""
    for process in processes:
        if grace_seconds > 0:
            process.join(grace_seconds)
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(_TERMINATE_GRACE_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


def _serve_jobs(connection: Connection, function_bytes: bytes) -> None:
    """A worker's loop: read a pickled job, reply ``("ok", result)`` or an error, until the pipe closes."""
    # Ctrl-C reaches the whole process group; only the parent handles it, and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    failed_load: bytes | None = None
    try:
        function = pickle.loads(function_bytes)
    except Exception as error:  # its module cannot be imported here: every job fails with this reason
        failed_load = _error_reply(error)
    while True:
        try:
            job_bytes = connection.recv_bytes()
        except (EOFError, OSError):
            return  # the parent has no more jobs, or is gone
        if failed_load is not None:
            reply = failed_load
        else:
            try:
                reply = pickle.dumps(("ok", function(pickle.loads(job_bytes))), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as error:
                reply = _error_reply(error)
        try:
            connection.send_bytes(reply)
        except OSError:
            return


def _error_reply(error: BaseException) -> bytes:
    """Pickle a job's exception for the parent, with its traceback text and one-line reason."""
    remote_traceback = "".join(traceback.format_exception(error))
    error_bytes: bytes | None
    try:
        error_bytes = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(error_bytes)  # some exceptions pickle but cannot be rebuilt; the reason still names them
    except Exception:
        error_bytes = None
    return pickle.dumps(("error", _one_line(error), remote_traceback, error_bytes), protocol=pickle.HIGHEST_PROTOCOL)


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, chained as its ``__cause__``."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


def _load_error(error_bytes: bytes | None, remote_traceback: str) -> BaseException | None:
    if error_bytes is None:
        return None
    try:
        error: BaseException = pickle.loads(error_bytes)
    except Exception:
        return None
    error.__cause__ = _RemoteTraceback(remote_traceback)
    return error


def _one_line(error: BaseException) -> str:
    """``"<Type>: <message>"`` on one line."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _pool_context(function: Callable[..., Any]) -> Any:
    """Fresh worker processes: never ``fork`` a parent whose torch thread pools may be mid-state.

    Where the platform has it, a fork server imports ``function``'s module and this one
    once and forks clean workers from it, so each worker skips the seconds torch and the
    package take to import; it lives as long as this process, so later runs (and the
    fresh workers that replace dead ones) start at once. Elsewhere, spawn.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    module = getattr(function, "__module__", None)
    preload = [__name__]  # the workers' loop lives here
    if module is not None and module not in ("__main__", __name__):  # a script's own functions come with its re-import
        preload.insert(0, module)
    context.set_forkserver_preload(preload)
    return context


# -- Ray -----------------------------------------------------------------------------------


def _run_ray(runner: _Runner[JobT, ResultT], *, workers: int, address: str | None, retries: int) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray: pip install 'leakage[ray]'") from None
    if not runner.jobs:
        return
    started_here = not ray.is_initialized()
    if started_here:
        _start_ray(ray, workers=workers, address=address)
    try:
        # Ray reruns a task whose worker died (max_retries); an exception is deterministic, so it is not rerun
        remote: Any = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_call)
        shared = ray.put(runner.function)
        # Submit no more than the cluster runs at once, so that after a failure no new job starts.
        window = max(workers, _cluster_cpus(ray))
        pending = deque(range(len(runner.jobs)))
        running: dict[Any, int] = {}
        try:
            while True:
                while pending and len(running) < window and not runner.is_stopping:
                    index = pending.popleft()
                    running[remote.remote(shared, runner.jobs[index])] = index
                if not running:
                    break
                done, _ = ray.wait(list(running), num_returns=1)
                for reference in done:
                    _report_ray_task(ray, runner, running.pop(reference), reference, retries=retries)
        except BaseException:
            for reference in running:
                ray.cancel(reference, force=True)
            raise
    finally:
        if started_here:
            ray.shutdown()


def _cluster_cpus(ray: Any) -> int:
    return int(ray.cluster_resources().get("CPU", 0))


def _report_ray_task(ray: Any, runner: _Runner[JobT, ResultT], index: int, reference: Any, *, retries: int) -> None:
    try:
        result = ray.get(reference)
    except ray.exceptions.RayTaskError as error:
        # RayTaskError's own text is the whole remote traceback; keep it as the cause's cause
        cause = error.cause if isinstance(error.cause, BaseException) else error
        if cause is not error:
            cause.__cause__ = _RemoteTraceback(str(error))
        runner.fail_with(index, cause, attempts=1)
    except ray.exceptions.RayError as error:  # the worker died on every attempt, the node was lost, ...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = f"worker died ({type(error).__name__}: {first_line})" if first_line else \
            f"worker died ({type(error).__name__})"
        runner.fail(index, "worker_died", reason, attempts=retries + 1)
    else:
        runner.finish(index, result)


def _start_ray(ray: Any, *, workers: int, address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a quiet local instance of ``workers`` CPUs.

    The local instance runs without the dashboard, keeps worker output in its log files
    (under ``$RAY_TMPDIR``, default ``/tmp``) and logs warnings only.
    """
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        # "local" always starts a new instance, never joins a cluster another user left running
        ray.init(
            address="local", num_cpus=workers, include_dashboard=False,
            object_store_memory=_RAY_OBJECT_STORE_BYTES, **quiet,
        )
        return
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ConfigError(f"address {address!r}: cannot connect to a Ray cluster: {error}") from None


def _call(function: Callable[[JobT], ResultT], job: JobT) -> ResultT:
    """Run one job in a Ray worker (``ray.remote`` takes only Python functions; this takes any callable)."""
    return function(job)


def _job_error(label: str, cause: BaseException) -> Exception:
    """Return ``cause`` as a new error that names the job, keeping its type when it can."""
    message = f"job {label} failed: {type(cause).__name__}: {cause}"
    kind = type(cause)
    if issubclass(kind, Exception):
        try:
            rebuilt = kind(message)
        except TypeError:  # a constructor that wants more than a message
            rebuilt = None
        if isinstance(rebuilt, kind) and str(rebuilt) == message:
            return rebuilt
    return RuntimeError(message)
