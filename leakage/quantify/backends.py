"""Where jobs run: in this process, a local process pool, or Ray tasks.

Every job is independent and returns plain data, so the backend only decides where it
runs; results come back in job order, so the same spec gives the same report on any
backend. Ray is optional (``pip install 'leakage[ray]'``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Literal, TypeVar, get_args

from tqdm.auto import tqdm

from leakage.errors import ConfigError

__all__ = ["BACKENDS", "Backend", "run_jobs"]

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = get_args(Backend)
JobT = TypeVar("JobT")


def run_jobs(
    function: Callable[[JobT], dict[str, Any]],
    jobs: Sequence[JobT],
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    show_progress: bool = False,
    describe: Callable[[JobT], str] = str,
) -> list[dict[str, Any]]:
    """Run ``function`` on every job and return the results in job order.

    Args:
        function: a module-level function (it is pickled to worker processes).
        jobs: the jobs.
        backend: ``"local"`` (this process when ``workers == 1``, else a process pool
            of ``workers``) or ``"ray"`` (tasks on the Ray cluster at ``address``, or a
            local Ray instance with ``workers`` CPUs when ``address`` is ``None``).
        workers: parallel workers, >= 1.
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``); Ray only.
        show_progress: show a progress bar over finished jobs.
        describe: a job's label for the progress bar.

    Raises:
        ConfigError: an unknown backend, ``workers < 1``, an address without Ray, or
            Ray requested but not installed.

    >>> run_jobs(lambda job: {"double": 2 * job}, [1, 2])
    [{'double': 2}, {'double': 4}]
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"jobs must be an integer >= 1, got {workers!r}")
    if address is not None and backend != "ray":
        raise ConfigError("address needs --backend ray")
    bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not show_progress)
    try:
        if backend == "ray":
            return _run_ray(function, jobs, workers=workers, address=address, bar=bar)
        if workers == 1 or len(jobs) <= 1:
            results = []
            for job in jobs:
                bar.set_postfix_str(describe(job))
                results.append(function(job))
                bar.update()
            return results
        return _run_pool(function, jobs, workers=workers, bar=bar)
    finally:
        bar.close()


def _run_pool(function: Callable[[JobT], dict[str, Any]], jobs: Sequence[JobT], *, workers: int, bar: Any) -> list[dict[str, Any]]:
    # spawn, not fork: a forked child inherits torch's thread pools mid-state and can hang
    context = multiprocessing.get_context("spawn")
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(function, job): index for index, job in enumerate(jobs)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update()
    return [result for result in results if result is not None]


def _run_ray(
    function: Callable[[JobT], dict[str, Any]], jobs: Sequence[JobT], *, workers: int, address: str | None, bar: Any
) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray: pip install 'leakage[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(function)
        pending = {remote.remote(job): index for index, job in enumerate(jobs)}
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        waiting = list(pending)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for reference in done:
                results[pending[reference]] = ray.get(reference)
                bar.update()
        return [result for result in results if result is not None]
    finally:
        if started_here:
            ray.shutdown()
