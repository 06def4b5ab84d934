"""The local backend's pool of worker processes, each running one job at a time over its own pipe.

concurrent.futures.ProcessPoolExecutor cannot say which job killed a worker: one death
breaks the pool and loses every result. Here each worker runs one job at a time over its
own pipe, so a worker's death is charged to the job it was running, and to no other: the
job runs again on a fresh worker, or is a ``"worker_died"`` failure. A job's exception
comes back pickled with its traceback text. Results, failures and retries are reported to
the run's bookkeeping (``_Runner`` in :mod:`leakage.quantify.backends`).

Workers run :func:`_serve_jobs`, which they import by name from this module: the fork
server preloads it (see :func:`_pool_context`).
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, TypeVar

from leakage.quantify._job_errors import RemoteTraceback, one_line

if TYPE_CHECKING:
    from leakage.quantify.backends import _Runner

JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")

# How long a stopped worker may take to exit before it is killed: it only has to leave its loop.
_EXIT_GRACE_SECONDS = 5.0
_TERMINATE_GRACE_SECONDS = 1.0


@dataclass
class _Worker:
    process: Any                                # a multiprocessing Process of the pool's context
    connection: Connection                      # this end of its pipe: jobs out, replies in
    index: int | None = None                    # the job it is running, None while idle


def run_pool(runner: _Runner[JobT, ResultT], *, workers: int, retries: int) -> None:
    """Run the runner's jobs on up to ``workers`` processes, rerunning one whose worker died ``retries`` times."""
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
        runner.fail(index, "error", f"the result could not be read: {one_line(error)}", attempts, error)
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
    return pickle.dumps(("error", one_line(error), remote_traceback, error_bytes), protocol=pickle.HIGHEST_PROTOCOL)


def _load_error(error_bytes: bytes | None, remote_traceback: str) -> BaseException | None:
    if error_bytes is None:
        return None
    try:
        error: BaseException = pickle.loads(error_bytes)
    except Exception:
        return None
    error.__cause__ = RemoteTraceback(remote_traceback)
    return error


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
