"""Cost of a model the size of a real deployment's: ``resnet18`` (11.2M parameters) simulated and scored.

Prints one JSON object (progress lines go to stderr). Part of issue 14, "Score your own
deployment": can a team score a ResNet-18 deployment on one machine, and does
``record_truth = "targets"`` keep ``leakage score`` below 4 GB at 100 clients x 5 rounds?

- ``simulation``: for N = 10 and 100 clients, each in its own subprocess with one torch
  thread, ``simulate`` of one FedSGD round of the toolkit's ``resnet18`` (3x3 stem, no max
  pool, batch norm on batch statistics) on ``sample_patches``, one 32x32 image per client,
  under ``plain``. The first call of a process pays seconds of autograd and vmap set-up, so
  one warm-up call runs first (its times are printed as ``warmup_*``) and the figures are
  the best of ``REPEATS`` timed calls: client updates per CPU second (``time.process_time``;
  one thread, so the work done rather than the wait for a shared machine's cores) and per
  wall second. Each call builds the model, loads the data and partitions it, as a user's
  ``simulate`` call does. ``peak_rss_mb`` is the subprocess's peak (``ru_maxrss``), warm-up
  included (the same setting, so the same peak).
- ``user_model``: the same at N = 10 for a ``torchvision.models.resnet18(num_classes=10)``
  instance given as is (its own stem, max pool, and batch norm with running statistics,
  which the simulator carries as buffers), with two images per client in a batch of two.
  A batch of one fails: at 32x32 the last stage is 1x1, and batch norm in training mode
  cannot normalise one value per channel; the subprocess tries it and prints the error as
  ``batch_of_one``.
- ``score_memory``: ``leakage score SPEC --out DIR --no-progress --force`` (``--force``:
  the preflight's memory estimate refuses this spec on a 24 GiB machine) in a subprocess,
  on a spec of ``resnet18`` on ``sample_patches``, FedSGD with batch 1 (one image per
  client), 100 clients, 5 rounds, one deployment, run once with ``record_truth =
  "targets"`` and once with ``"all"``: the child's peak RSS (``RUSAGE_CHILDREN`` of a
  subprocess that starts only that child), its CPU and wall seconds, the exit and the
  ``truth_kept`` figures of ``report.json``.

Why the spec scores only ``mpc``, with the ``server`` and ``public`` observers, and only
the ``round_difference`` attack: a view that really holds every upload (the server under
``plain``, each client's own update) keeps rounds x clients x P floats whatever
``record_truth`` says (at P = 11.2M and 100 clients, 4.5 GB a round, 22 GB over 5 rounds),
so there the two settings would cost the same and both fail. Under ``mpc`` (the baseline
``leakage score`` always adds, accepted alone by ``parse_spec``) no view holds an update,
so the transcript keeps the updates only as ground truth, and the difference between the
two runs is the memory ``record_truth`` saves. The audit is off and the one attack is
update recovery, so the runs measure the simulation and its truth, not attack time.

This machine has 24 GiB: each score run gets an address-space limit (``RLIMIT_AS``) of
``LIMIT_GIB`` GiB, so the ``"all"`` run cannot take the machine down; an allocation past it
fails inside the run, which is reported as ``"exceeded the 16 GiB limit"``, a measured
result, with the peak RSS it reached. The limit counts address space, libraries torch maps
included (a few GB before any tensor), so it trips before the RSS reaches 16 GiB.

``--quick``: N = 10 only, and the score runs at 10 clients x 2 rounds (a smoke test).

Usage: python benchmarks/own_model.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DATASET = "sample_patches"
CLIENT_COUNTS = (10, 100)
REPEATS = 2
USER_MODEL_CLIENTS = 10
USER_MODEL_SAMPLES = 2  # a batch of one fails batch norm at torchvision's 1x1 last stage
SCORE_CLIENTS, SCORE_ROUNDS = 100, 5
QUICK_SCORE_CLIENTS, QUICK_SCORE_ROUNDS = 10, 2
LIMIT_GIB = 16
TARGET_PEAK_GB = 4  # decimal: 4e9 bytes
_OUT_OF_MEMORY = ("can't allocate memory", "cannot allocate memory", "memoryerror", "bad_alloc", "out of memory")


def _progress(message: str) -> None:
    print(f"own_model: {message}", file=sys.stderr, flush=True)


def _peak_rss_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


# -- simulation (in a child with one torch thread) ---------------------------------------------------------------


def _simulation(model_kind: str, n_clients: int, samples_per_client: int) -> dict[str, Any]:
    """One FedSGD round of ``n_clients`` under ``plain``: warm-up, then the best of ``REPEATS`` timed calls."""
    import torch

    from leakage import simulate
    from leakage.data import load_dataset

    torch.manual_seed(0)  # torchvision initialises its model from the global generator
    replacement = n_clients * samples_per_client > len(load_dataset(DATASET))

    model: Any = "resnet18"
    if model_kind == "torchvision":  # one instance; simulate copies it, so every call starts from these weights
        import torchvision

        model = torchvision.models.resnet18(num_classes=10)

    def settings(per_client: int) -> dict[str, Any]:
        return dict(
            dataset=DATASET, model=model, n_clients=n_clients, rounds=1, algorithm="fedsgd", batch_size=None,
            partition_options={"samples_per_client": per_client, "replacement": replacement}, scheme="plain", seed=0,
        )

    def timed() -> tuple[float, float, Any]:
        cpu, wall = time.process_time(), time.perf_counter()
        transcript = simulate(**settings(samples_per_client))
        return time.process_time() - cpu, time.perf_counter() - wall, transcript

    warmup_cpu, warmup_wall, transcript = timed()
    num_parameters = int(transcript.settings["num_parameters"])
    buffer_entries = int(transcript.settings["num_buffer_entries"])
    del transcript
    best_cpu, best_wall = float("inf"), float("inf")
    for _ in range(REPEATS):
        cpu, wall, transcript = timed()
        del transcript
        best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
    result: dict[str, Any] = {
        "model": model_kind,
        "n_clients": n_clients,
        "samples_per_client": samples_per_client,
        "batch_size": samples_per_client,
        "replacement": replacement,
        "num_parameters": num_parameters,
        "buffer_entries": buffer_entries,
        "update_block_mb": round(n_clients * num_parameters * 4 / 2**20, 1),
        "updates_per_cpu_s": round(n_clients / best_cpu, 2),
        "updates_per_wall_s": round(n_clients / best_wall, 2),
        "round_cpu_s": round(best_cpu, 2),
        "round_wall_s": round(best_wall, 2),
        "warmup_cpu_s": round(warmup_cpu, 2),
        "warmup_wall_s": round(warmup_wall, 2),
        "peak_rss_mb": _peak_rss_mb(resource.RUSAGE_SELF),
    }
    if model_kind == "torchvision":
        try:
            simulate(**settings(1))
            result["batch_of_one"] = "ran"
        except Exception as error:  # the failure is the measurement
            first_line = (str(error).splitlines() or [""])[0]
            result["batch_of_one"] = f"fails: {type(error).__name__}: {first_line}"[:300]
    return result


# -- score memory (a child that starts only the `leakage score` process) ------------------------------------------


def _spec_toml(record_truth: str, n_clients: int, rounds: int) -> str:
    return f"""\
name = "own model: resnet18, {n_clients} clients x {rounds} rounds, record_truth {record_truth}"
schemes = ["mpc"]
observers = ["server", "public"]
target = 0
seeds = [0]
audit = false

[task]
dataset = "{DATASET}"
model = "resnet18"
partition = "iid"
partition_options = {{ samples_per_client = 1 }}
algorithm = "fedsgd"
batch_size = 1
lr = 0.1
rounds = {rounds}
record_truth = "{record_truth}"

[[deployments]]
name = "{n_clients} clients"
n_clients = {n_clients}

[[attacks]]
name = "round_difference"
"""


def _leakage_command() -> str:
    beside = Path(sys.executable).with_name("leakage")
    return str(beside) if beside.exists() else "leakage"


def _limit_memory() -> None:
    limit = LIMIT_GIB * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _outcome(returncode: int, stderr: str) -> str:
    if returncode == 0:
        return "finished"
    if returncode == -signal.SIGKILL or any(marker in stderr.lower() for marker in _OUT_OF_MEMORY):
        return f"exceeded the {LIMIT_GIB} GiB limit"
    return "failed"


def _score_memory(record_truth: str, n_clients: int, rounds: int) -> dict[str, Any]:
    """Run ``leakage score`` on the spec under the memory limit; its peak RSS, times, exit and truth kept."""
    with tempfile.TemporaryDirectory(prefix="own_model_") as folder:
        spec, out = Path(folder) / "spec.toml", Path(folder) / "out"
        spec.write_text(_spec_toml(record_truth, n_clients, rounds), encoding="utf-8")
        command = [_leakage_command(), "score", str(spec), "--out", str(out), "--no-progress", "--force"]
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        started = time.perf_counter()
        finished = subprocess.run(
            command, capture_output=True, text=True, env=environment, preexec_fn=_limit_memory, check=False
        )
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # this process has started no other child
        result: dict[str, Any] = {
            "record_truth": record_truth,
            "n_clients": n_clients,
            "rounds": rounds,
            "outcome": _outcome(finished.returncode, finished.stderr),
            "returncode": finished.returncode,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "peak_rss_gb": round(usage.ru_maxrss * 1024 / 1e9, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "wall_s": round(wall, 1),
        }
        if finished.returncode != 0:
            lines = [line for line in finished.stderr.splitlines() if line.strip()]
            reasons = [line for line in lines if "error" in line.lower()] or lines[-1:]  # the CLI's "error:" line
            result["error"] = (reasons[0] if reasons else "")[:600]
            return result
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        cost = report["costs"][0]
        result.update(
            truth_kept=cost["truth_kept"],
            simulate_s=round(cost["seconds"], 1),
            timings_s={name: round(value, 1) for name, value in report["timings"].items()},
            mpc_backend=cost["mpc_backend"],
        )
        return result


def _memory_summary(runs: list[dict[str, Any]], n_clients: int, rounds: int, quick: bool) -> dict[str, Any]:
    """The target check and what holds the memory, from the runs' truth figures."""
    summary: dict[str, Any] = {}
    kept = next((run["truth_kept"] for run in runs if "truth_kept" in run), None)
    if kept is not None and kept["updates_kept"]:
        update_bytes = kept["update_bytes"] / kept["updates_kept"]
        summary["update_mb"] = round(update_bytes / 2**20, 1)
        summary["update_block_gb_per_round"] = round(n_clients * update_bytes / 1e9, 2)
        summary["truth_all_gb"] = round(rounds * n_clients * update_bytes / 1e9, 2)
    targets = next(run for run in runs if run["record_truth"] == "targets")
    if not quick:
        summary["target"] = {
            "peak_rss_gb_below": TARGET_PEAK_GB,
            "setting": f"{n_clients} clients x {rounds} rounds, record_truth 'targets'",
            "peak_rss_gb": targets["peak_rss_gb"],
            "met": targets["outcome"] == "finished" and targets["peak_rss_gb"] < TARGET_PEAK_GB,
        }
    return summary


# -- driver -------------------------------------------------------------------------------------------------------


def _in_subprocess(*args: str) -> dict[str, Any]:
    finished = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} exited with {finished.returncode}:\n{finished.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


def _child(args: list[str]) -> dict[str, Any]:
    if args[0] == "score":
        return _score_memory(args[1], int(args[2]), int(args[3]))
    import torch

    torch.set_num_threads(1)
    return _simulation(args[0], int(args[1]), int(args[2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10 only; the score runs at 10 clients x 2 rounds")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child)))
        return
    started = time.perf_counter()
    counts = CLIENT_COUNTS[:1] if args.quick else CLIENT_COUNTS
    simulation = []
    for n_clients in counts:
        _progress(f"simulation: resnet18, {n_clients} clients")
        simulation.append(_in_subprocess("resnet18", str(n_clients), "1"))
    _progress(f"user model: torchvision resnet18, {USER_MODEL_CLIENTS} clients, batch {USER_MODEL_SAMPLES}")
    user_model = _in_subprocess("torchvision", str(USER_MODEL_CLIENTS), str(USER_MODEL_SAMPLES))
    n_clients, rounds = (QUICK_SCORE_CLIENTS, QUICK_SCORE_ROUNDS) if args.quick else (SCORE_CLIENTS, SCORE_ROUNDS)
    runs = []
    for record_truth in ("targets", "all"):
        _progress(f"leakage score: {n_clients} clients x {rounds} rounds, record_truth {record_truth!r}")
        runs.append(_in_subprocess("score", record_truth, str(n_clients), str(rounds)))
        _progress(f"  {runs[-1]['outcome']}, peak RSS {runs[-1]['peak_rss_mb']} MB, {runs[-1]['wall_s']} s")
    report = {
        "torch_threads": 1,
        "quick": args.quick,
        "timing": f"best of {REPEATS} calls after a warm-up call, each in its own subprocess",
        "simulation": simulation,
        "user_model": {
            **user_model,
            "note": (
                "torchvision.models.resnet18(num_classes=10) given as an instance: BatchNorm with running "
                "statistics (carried as buffers); at 32x32 its last stage is 1x1, so a batch of one fails "
                "batch norm in training mode and each client holds 2 images (batch 2)"
            ),
        },
        "score_memory": {
            "command": "leakage score SPEC --out DIR --no-progress --force",
            "spec": (
                f"resnet18 on {DATASET}, fedsgd, batch 1, {n_clients} clients x {rounds} rounds, scheme mpc only, "
                "observers server and public, attack round_difference, no audit"
            ),
            "limit": f"RLIMIT_AS {LIMIT_GIB} GiB on the score process (address space, mapped libraries included)",
            "runs": runs,
            **_memory_summary(runs, n_clients, rounds, args.quick),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
