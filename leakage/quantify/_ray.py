"""The Ray backend: each job a Ray task, on a cluster or on a quiet local Ray instance started for the run.

Ray is optional (``pip install 'leakage[ray]'``) and imported only when this backend runs.
Ray itself reruns a task whose worker died (``max_retries``); a task that raises is not
rerun. Results and failures are reported to the run's bookkeeping (``_Runner`` in
:mod:`leakage.quantify.backends`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from leakage.errors import ConfigError
from leakage.quantify._job_errors import RemoteTraceback

if TYPE_CHECKING:
    from leakage.quantify.backends import _Runner

JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")

# The object store only carries jobs and their small results; Ray's default reserves 30% of RAM.
_RAY_OBJECT_STORE_BYTES = 128 * 1024 * 1024


def run_ray(runner: _Runner[JobT, ResultT], *, workers: int, address: str | None, retries: int) -> None:
    """Run the runner's jobs as Ray tasks, submitting no more than the cluster runs at once."""
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
            cause.__cause__ = RemoteTraceback(str(error))
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
