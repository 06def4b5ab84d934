"""What keeping every finished job costs: ``leakage score`` on the default spec with and without the job store.

Runs the built-in default spec in this process (one torch thread) a few times without a
store and a few times with a fresh one, interleaved so drift on a busy machine hits
both, and prints one JSON object: the median wall time of each, the time spent writing
results (every ``JobStore.save`` call timed), and the store's files and bytes.

    python benchmarks/job_store.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from leakage.environment import environment_info
from leakage.quantify import JobStore, load_spec, score


def _timed_store(folder: Path, spec: Any) -> tuple[JobStore, list[float]]:
    """A fresh store whose ``save`` calls are timed (the list fills as jobs finish)."""
    store = JobStore.open(folder, spec, version=str(environment_info().get("leakage")), resume=False, fresh=True)
    saves: list[float] = []
    original = JobStore.save

    class Timed(JobStore):
        def save(self, job: Any, result: Any) -> None:
            started = time.perf_counter()
            original(self, job, result)
            saves.append(time.perf_counter() - started)

    return Timed(store.folder, store.spec_hash, store.version, store.kept), saves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = load_spec()
    score(spec)  # warm-up: imports, dataset caches, the first torch kernels
    without, with_store, writing, files, sizes = [], [], [], [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        score(spec)
        without.append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as folder:
            store, saves = _timed_store(Path(folder) / "jobs", spec)
            started = time.perf_counter()
            score(spec, store=store)
            with_store.append(time.perf_counter() - started)
            writing.append(sum(saves))
            files.append(store.finished())
            sizes.append(store.size_bytes())
    print(json.dumps({
        "spec": "built-in default.toml",
        "repeats": args.repeats,
        "seconds_without_store": round(statistics.median(without), 3),
        "seconds_with_store": round(statistics.median(with_store), 3),
        "seconds_writing_results": round(statistics.median(writing), 4),
        "writing_share_of_run": round(statistics.median(writing) / statistics.median(with_store), 5),
        "jobs_kept": files[0],
        "store_bytes": sizes[0],
        "bytes_per_job": round(sizes[0] / files[0]),
        "all_seconds": {"without": [round(s, 3) for s in without], "with": [round(s, 3) for s in with_store]},
    }, indent=2))


if __name__ == "__main__":
    main()
