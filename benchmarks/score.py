"""Seconds and memory of ``leakage score`` on the built-in default spec, and the ``--jobs 2`` speedup.

Runs the CLI as a user would, ``python -m leakage.cli score --out DIR --no-progress``
with ``OMP_NUM_THREADS=1``, in three ways: ``--quick`` and the full spec with ``--jobs 1``,
and the full spec with ``--jobs 2``; ``--repeats`` rounds of the three (default 2) and
the fastest run of each is kept, since other work on the machine only ever adds time.
Prints one JSON object:

- ``runs``: per way, the fastest run's ``seconds`` (all of them in ``all_seconds``) (the CLI process from start to exit: Python start-up,
  imports, every job, writing report.json and report.html), ``stages`` (the report's
  ``timings``: ``simulate``, ``attacks`` and ``audit`` are summed over jobs, so with
  ``--jobs 2`` they add up to more than ``wall``, the time spent running jobs),
  ``peak_rss_mb`` (the largest single process the CLI waited for, itself included, from
  ``getrusage(RUSAGE_CHILDREN)`` in a fresh wrapper process per run, so runs do not share
  a maximum; workers forked by a fork server are not the CLI's children) and ``peak_tree_pss_mb``
  (the CLI, its fork server and workers together, as proportional set size so pages they
  share count once, sampled from /proc once a second: a lower bound on the true peak;
  ``null`` without /proc);
- ``targets``: the seconds the default spec (120) and ``--quick`` (30) should stay under
  on a 2-core machine, next to the measured seconds;
- ``speedup_jobs_2``: full-spec seconds with ``--jobs 1`` over ``--jobs 2`` (whole
  process, and the report's ``wall`` alone);
- ``machine``: CPU count and load average before and after, since a busy machine slows
  every number here.

Usage: python benchmarks/score.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_SECONDS = {"default": 120.0, "quick": 30.0}
RUNS = (("quick", ["--quick"]), ("default", []), ("default_jobs_2", ["--jobs", "2"]))
SAMPLE_SECONDS = 1.0  # reading PSS walks page tables (~20 ms a process): sample rarely, not to slow the run


def _tree_pss_bytes(root: int) -> int:
    """Proportional set size of ``root`` and all its descendants, read from /proc.

    PSS splits each shared page among the processes sharing it, so the workers forked from
    one fork server, which share most of torch's pages, are not counted several times over.
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # the process ended while we looked
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        tree |= frontier
    total = 0
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:"))
    return total


def _one_run(flags: list[str]) -> dict:
    """Run the CLI once (in this fresh process's only child) and measure it."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "report"
        command = [sys.executable, "-m", "leakage.cli", "score", "--out", str(out), "--no-progress", *flags]
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        started = time.perf_counter()
        process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak_tree = [0]
        has_proc = Path("/proc/self/smaps_rollup").exists()

        def sample() -> None:
            while process.poll() is None:
                peak_tree[0] = max(peak_tree[0], _tree_pss_bytes(process.pid))
                time.sleep(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        if has_proc:
            sampler.start()
        stdout, stderr = process.communicate()
        seconds = time.perf_counter() - started
        if has_proc:
            sampler.join()
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}{stdout}")
        report = json.loads((out / "report.json").read_text())
    return {
        "command": " ".join(["leakage", "score", "--out", "DIR", "--no-progress", *flags]),
        "seconds": round(seconds, 2),
        "stages": {name: round(value, 2) for name, value in report["timings"].items()},
        "jobs": _job_count(report),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "peak_tree_pss_mb": round(peak_tree[0] / 2**20, 1) if has_proc else None,
    }


def _job_count(report: dict) -> int:
    """Jobs the run had: one per scored deployment x scheme x seed, one per audited one."""
    scored = {(cost["deployment"], cost["scheme"], cost["seed"]) for cost in report["costs"]}
    audited = {(audit["deployment"], audit["scheme"], audit["seed"]) for audit in report["audits"]}
    return len(scored) + len(audited)


def _in_subprocess(flags: list[str]) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(flags)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the three runs; the fastest of each is kept")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.child:
        print(json.dumps(_one_run(json.loads(args.child))))
        return
    # warm the file cache, so the first run does not pay for reading torch from disk
    subprocess.run([sys.executable, "-c", "import leakage.cli, leakage.quantify"], check=True)
    load_before = os.getloadavg()
    measured: dict[str, list[dict]] = {name: [] for name, _ in RUNS}
    for _ in range(args.repeats):  # interleaved, so a burst of load elsewhere does not hit one way only
        for name, flags in RUNS:
            measured[name].append(_in_subprocess(flags))
    runs = {
        name: {**min(results, key=lambda run: run["seconds"]), "all_seconds": [run["seconds"] for run in results]}
        for name, results in measured.items()
    }
    load_after = os.getloadavg()
    one, two = runs["default"], runs["default_jobs_2"]
    report = {
        "spec": "leakage.quantify.load_spec() (built-in default.toml)",
        "runs": runs,
        "targets": {
            name: {
                "target_seconds": target,
                "measured_seconds": runs[name]["seconds"],
                "meets_target": runs[name]["seconds"] < target,
            }
            for name, target in TARGET_SECONDS.items()
        },
        "speedup_jobs_2": {
            "process": round(one["seconds"] / two["seconds"], 2),
            "jobs_wall": round(one["stages"]["wall"] / two["stages"]["wall"], 2),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(load, 2) for load in load_before],
            "load_average_after": [round(load, 2) for load in load_after],
            "omp_num_threads": 1,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
