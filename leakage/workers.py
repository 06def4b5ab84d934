"""Start the process that forks ``leakage score``'s workers early, so its imports overlap the parent's.

Workers are forked from one server process (multiprocessing's ``forkserver``) that has
imported torch, the package and the libraries every job needs once; a worker then
starts in milliseconds. Started first thing by ``leakage score --jobs N``, the server
does those imports while the parent reads the spec, instead of after it.

This is a base module: it imports only the standard library.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
from collections.abc import Sequence

__all__ = ["WORKER_PRELOAD", "start_worker_server"]

#: What a scoring worker needs: the job runner, the worker loop, the schemes, and the
#: parts of scikit-learn datasets and metrics load from.
WORKER_PRELOAD: tuple[str, ...] = (
    "leakage.quantify.runner",
    "leakage.quantify._pool",
    "defenses",
    "sklearn.datasets",
    "sklearn.metrics",
)


def start_worker_server(preload: Sequence[str] = WORKER_PRELOAD) -> bool:
    """Start the fork server with ``preload`` imported in it, if the platform has one; return whether it did.

    A server already running keeps what it preloaded.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(preload))
    multiprocessing.forkserver.ensure_running()
    return True
