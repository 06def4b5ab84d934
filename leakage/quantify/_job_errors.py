"""How a failed job's exception reads: its one-line reason, its remote traceback, the error naming the job.

Every backend words a failure the same way: ``"<Type>: <message>"`` for the log and
:class:`~leakage.quantify.backends.JobFailure`, the worker's traceback text chained as the
exception's ``__cause__``, and ``job <label> failed: ...`` when a caller raises it.
"""

from __future__ import annotations


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, chained as its ``__cause__``."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


def one_line(error: BaseException) -> str:
    """``"<Type>: <message>"`` on one line."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def job_error(label: str, cause: BaseException) -> Exception:
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
