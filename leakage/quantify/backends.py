"""Where jobs run: in this process, a local process pool, or Ray tasks.

Every job is independent and returns plain data, so the backend only decides where it
runs; results come back in job order, so the same spec gives the same report on any
backend. Ray is optional (``pip install 'leakage[ray]'``).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any, Literal, TypeVar, get_args

from tqdm.auto import tqdm

from leakage.checks import require_choice, require_int
from leakage.errors import ConfigError

__all__ = ["BACKENDS", "Backend", "run_jobs"]

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = get_args(Backend)
JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")

# The object store only carries jobs and their small results; Ray's default reserves 30% of RAM.
_RAY_OBJECT_STORE_BYTES = 128 * 1024 * 1024


def run_jobs(
    function: Callable[[JobT], ResultT],
    jobs: Sequence[JobT],
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    show_progress: bool = False,
    describe: Callable[[JobT], str] = str,
) -> list[ResultT]:
    """Run ``function`` on every job and return the results in job order.

    Args:
        function: a picklable callable, such as a module-level function (worker
            processes import it by name, so it must live in an importable module).
        jobs: the jobs (picklable).
        backend: ``"local"`` (this process when ``workers == 1``, else a pool of
            ``workers`` processes) or ``"ray"`` (tasks on the Ray cluster at ``address``,
            or on a new, quiet local Ray instance with ``workers`` CPUs when ``address`` is
            ``None``, shut down at the end; when this process is already connected to Ray,
            that cluster runs the tasks and stays up, and ``address`` is not used).
        workers: parallel workers, >= 1.
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``); Ray only.
        show_progress: show a progress bar over finished jobs.
        describe: a job's label, for the progress bar and for errors.

    Returns:
        ``function(job)`` for every job, in the order of ``jobs`` whatever the backend.

    Raises:
        ConfigError: an unknown backend, ``workers < 1``, an address without Ray, an empty
            one or one Ray cannot connect to, or Ray requested but not installed.
        Exception: a job failed. The first failure seen stops the run (jobs not started yet
            are dropped) and is raised as ``job <label> failed: <Type>: <message>``, chained
            to the original and its remote traceback. It keeps the original type where that
            type can be rebuilt from a message (bad input stays a ``ValueError`` or
            ``FileNotFoundError``, which the CLI reports in one line), else it is a ``RuntimeError``.

    >>> run_jobs(lambda job: {"double": 2 * job}, [1, 2])
    [{'double': 2}, {'double': 4}]
    """
    require_choice("backend", backend, BACKENDS)
    workers = require_int("workers", workers, minimum=1)
    if address is not None:
        if backend != "ray":
            raise ConfigError(f"address needs backend 'ray', got backend {backend!r}")
        if not isinstance(address, str) or not address.strip():
            raise ConfigError(f"address must be a Ray cluster address such as 'auto', got {address!r}")
    bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not show_progress)
    try:
        if backend == "ray":
            return _run_ray(function, jobs, workers=workers, address=address, bar=bar, describe=describe)
        if workers == 1 or len(jobs) <= 1:
            return _run_here(function, jobs, bar=bar, describe=describe)
        return _run_pool(function, jobs, workers=workers, bar=bar, describe=describe)
    finally:
        bar.close()


def _run_here(function: Callable[[JobT], ResultT], jobs: Sequence[JobT], *, bar: Any, describe: Callable[[JobT], str]
              ) -> list[ResultT]:
    results = []
    for job in jobs:
        bar.set_postfix_str(describe(job))
        try:
            results.append(function(job))
        except Exception as error:
            raise _job_error(describe(job), error) from error
        bar.update()
    return results


def _run_pool(
    function: Callable[[JobT], ResultT],
    jobs: Sequence[JobT],
    *,
    workers: int,
    bar: Any,
    describe: Callable[[JobT], str],
) -> list[ResultT]:
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=_pool_context(function))
    try:
        futures: dict[Future[ResultT], int] = {pool.submit(function, job): index for index, job in enumerate(jobs)}
        results: dict[int, ResultT] = {}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in sorted(done, key=futures.__getitem__):  # of jobs done together, the first one's error wins
                index = futures[future]
                error = future.exception()
                if error is not None:
                    raise _job_error(describe(jobs[index]), error) from error
                results[index] = future.result()
                bar.update()
        return [results[index] for index in range(len(jobs))]
    finally:
        # after an error, drop the jobs not started yet instead of running them to the end
        pool.shutdown(wait=True, cancel_futures=True)


def _pool_context(function: Callable[..., Any]) -> Any:
    """Fresh worker processes: never ``fork`` a parent whose torch thread pools may be mid-state.

    Where the platform has it, a fork server imports ``function``'s module once and forks
    clean workers from it, so each worker skips the seconds torch and the package take to
    import; it lives as long as this process, so later runs start at once. Elsewhere, spawn.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    module = getattr(function, "__module__", None)
    if module is not None and module != "__main__":  # a script's own functions come with its re-import
        context.set_forkserver_preload([module])
    return context


def _run_ray(
    function: Callable[[JobT], ResultT],
    jobs: Sequence[JobT],
    *,
    workers: int,
    address: str | None,
    bar: Any,
    describe: Callable[[JobT], str],
) -> list[ResultT]:
    try:
        import ray
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray: pip install 'leakage[ray]'") from None
    if not jobs:
        return []
    started_here = not ray.is_initialized()
    if started_here:
        _start_ray(ray, workers=workers, address=address)
    try:
        remote: Any = ray.remote(num_cpus=1)(_call)
        shared = ray.put(function)
        references = [remote.remote(shared, job) for job in jobs]
        index_of = {reference: index for index, reference in enumerate(references)}
        results: dict[int, ResultT] = {}
        waiting = list(references)
        try:
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                for reference in done:
                    index = index_of[reference]
                    try:
                        results[index] = ray.get(reference)
                    except ray.exceptions.RayTaskError as error:
                        # RayTaskError's own text is the whole remote traceback; name the job and the cause
                        cause = error.cause if isinstance(error.cause, BaseException) else error
                        raise _job_error(describe(jobs[index]), cause) from error
                    except ray.exceptions.RayError as error:  # the worker died, the task was cancelled, ...
                        raise _job_error(describe(jobs[index]), error) from error
                    bar.update()
        except BaseException:
            for reference in waiting:
                ray.cancel(reference, force=True)
            raise
        return [results[index] for index in range(len(jobs))]
    finally:
        if started_here:
            ray.shutdown()


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
