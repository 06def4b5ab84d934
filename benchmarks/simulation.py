"""Speed of the vectorised simulator against the per-client loop, and the memory ``record_truth`` saves.

Prints one JSON object. Every setting gives each of N clients 8 ``digits`` samples
(drawn with replacement when N x 8 exceeds the dataset) and trains ``mlp``; FedSGD takes
one step on the 8 samples, FedAvg one local epoch in batches of 4. For N = 10, 100, 1000
and both algorithms, each in its own subprocess with one torch thread, in the same run:

- ``training``: one round's local training of all N clients on the same sample orders,
  vectorised (``torch.func.vmap`` over clients) against the per-client loop
  (``vectorise=False``); ``max_abs_difference`` between the two ``[N, P]`` update blocks,
  and ``fresh_block_cpu_ms``, what filling a fresh ``[N, P]`` block costs (both sides
  write one per round, and the transcript keeps it, so its pages are new every round).
- ``simulation``: the whole ``Simulator.run`` (sampling, training, the ``plain`` scheme
  and its views, the transcript), 3 rounds, ``vectorise=True`` against ``False``.
- ``reference_loop``: a plain PyTorch loop (an ``nn.Module`` and ``torch.optim.SGD`` per
  client, training only), the way FL simulators usually train clients.

Times are CPU seconds of this process (``time.process_time``; one thread, so the work
done rather than the time spent waiting for a shared machine's cores), the best of
repeats with both sides interleaved; wall-clock speed-ups are printed beside them.

``record_truth`` runs 1000 clients x 5 FedSGD rounds with ``record_truth="all"`` and
``"targets"`` (client 0), each in its own subprocess: the truth the transcript keeps, the
bytes held by the truth alone (no view references them), and the peak RSS. Under
``plain`` every client's view holds its own update, so the truth costs nothing extra;
under ``mpc`` no view holds an update and ``"targets"`` frees the round's block.
``end_to_end`` times 1000 clients x 20 FedSGD rounds on all of ``digits`` (wall seconds).

``--device cuda`` trains the clients on the GPU, both the vectorised simulator and its
per-client loop (``LocalTraining`` with ``device``), and the reference loop's modules too;
the speed-ups are then wall-clock (``speedup_wall``; CPU seconds only count the launches),
and the ``record_truth`` runs, which measure CPU memory, are left out.

Usage: python benchmarks/simulation.py [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

SAMPLES_PER_CLIENT = 8
CLIENT_COUNTS = (10, 100, 1000)
ALGORITHMS = ("fedsgd", "fedavg")
ROUNDS = 3
DEVICE = "cpu"  # set from --device in every child process


def _synchronised(function: Callable[[], object]) -> Callable[[], object]:
    """``function``, returning only once the device has finished the work it queued."""
    if DEVICE == "cpu":
        return function

    def run() -> object:
        result = function()
        torch.cuda.synchronize()
        return result

    return run


def _settings(n_clients: int, algorithm: str) -> dict[str, Any]:
    from leakage.data import load_dataset

    replacement = n_clients * SAMPLES_PER_CLIENT > len(load_dataset("digits"))
    return dict(
        dataset="digits",
        model="mlp",
        n_clients=n_clients,
        algorithm=algorithm,
        batch_size=None if algorithm == "fedsgd" else 4,
        lr=0.1,
        partition="iid",
        partition_options={"samples_per_client": SAMPLES_PER_CLIENT, "replacement": replacement},
        seed=0,
        device=DEVICE,
    )


def _best_of(sides: dict[str, Callable[[], object]], *, min_cpu_seconds: float) -> dict[str, tuple[float, float]]:
    """Best ``(cpu, wall)`` seconds per call of each side, interleaved until each has spent ``min_cpu_seconds``."""
    sides = {label: _synchronised(function) for label, function in sides.items()}
    for function in sides.values():
        function()  # warm up
    best = {label: (float("inf"), float("inf")) for label in sides}
    spent = dict.fromkeys(sides, 0.0)
    while min(spent.values()) < min_cpu_seconds:
        for label, function in sides.items():
            if spent[label] >= min_cpu_seconds and any(s < min_cpu_seconds for s in spent.values()):
                continue
            cpu, wall = time.process_time(), time.perf_counter()
            function()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            best[label] = (min(best[label][0], cpu), min(best[label][1], wall))
            spent[label] += cpu
    return best


def _one_round_of_training(n_clients: int, algorithm: str) -> tuple[Any, tuple[Any, ...]]:
    """The simulator's local training of round 0 and its inputs, as a real run calls it."""
    from leakage.simulation import SimulationSettings, Simulator
    from leakage.simulation.round_training import LocalTraining

    captured: list[tuple[Any, tuple[Any, ...]]] = []
    original = LocalTraining.run

    def recording(self: LocalTraining, *args: Any) -> Any:
        captured.append((self, args))
        return original(self, *args)

    LocalTraining.run = recording  # type: ignore[method-assign,assignment]
    try:
        Simulator(SimulationSettings(rounds=1, **_settings(n_clients, algorithm))).run()
    finally:
        LocalTraining.run = original  # type: ignore[method-assign]
    return captured[0]


def _training(n_clients: int, algorithm: str) -> dict[str, Any]:
    training, args = _one_round_of_training(n_clients, algorithm)
    loop = dataclasses.replace(training, vectorise=False)
    vectorised_updates, vectorised_losses = training.run(*args)
    loop_updates, loop_losses = loop.run(*args)
    best = _best_of({"vectorised": lambda: training.run(*args), "loop": lambda: loop.run(*args)}, min_cpu_seconds=2.0)
    kept: list[torch.Tensor] = []  # as a transcript keeps every round's block

    def fresh_block() -> None:
        kept.append(torch.empty_like(vectorised_updates).fill_(0.0))

    return {
        # what both sides pay per round for the [N, P] block the transcript keeps: first-touch page faults
        "fresh_block_cpu_ms": round(_best_of({"block": fresh_block}, min_cpu_seconds=0.2)["block"][0] * 1000, 2),
        "vectorised_updates_per_cpu_s": round(n_clients / best["vectorised"][0], 1),
        "loop_updates_per_cpu_s": round(n_clients / best["loop"][0], 1),
        "speedup": round(best["loop"][0] / best["vectorised"][0], 2),
        "speedup_wall": round(best["loop"][1] / best["vectorised"][1], 2),
        "vectorised_round_wall_ms": round(best["vectorised"][1] * 1000, 2),
        "max_abs_difference": float((vectorised_updates - loop_updates).abs().max()),
        "max_abs_difference_first_loss": float((vectorised_losses - loop_losses).abs().max()),
        "max_abs_update": float(loop_updates.abs().max()),
    }


def _simulation(n_clients: int, algorithm: str) -> dict[str, Any]:
    from leakage.simulation import SimulationSettings, Simulator

    simulators = {
        label: Simulator(SimulationSettings(rounds=ROUNDS, vectorise=vectorise, **_settings(n_clients, algorithm)))
        for label, vectorise in (("vectorised", True), ("loop", False))
    }
    best = _best_of({label: simulator.run for label, simulator in simulators.items()}, min_cpu_seconds=3.0)
    updates = n_clients * ROUNDS
    return {
        "rounds": ROUNDS,
        "vectorised_updates_per_cpu_s": round(updates / best["vectorised"][0], 1),
        "loop_updates_per_cpu_s": round(updates / best["loop"][0], 1),
        "speedup": round(best["loop"][0] / best["vectorised"][0], 2),
        "speedup_wall": round(best["loop"][1] / best["vectorised"][1], 2),
    }


def _reference_loop(n_clients: int, algorithm: str) -> tuple[float, float]:
    """CPU and wall seconds of one round of a plain per-client nn.Module + SGD loop (same data, same model)."""
    from leakage.data import load_dataset, partition_dataset
    from leakage.models import create_model
    from leakage.seeding import numpy_rng

    settings = _settings(n_clients, algorithm)
    device = torch.device(DEVICE)
    dataset = load_dataset("digits")
    inputs, targets = dataset.inputs.to(device), dataset.targets.to(device)
    parts = partition_dataset(
        "iid", dataset.targets, n_clients, rng=numpy_rng(0, 0), **settings["partition_options"]
    )
    generator = torch.Generator().manual_seed(0)
    global_model = create_model("mlp", input_shape=dataset.input_shape, num_classes=10, generator=generator).to(device)
    local_model = create_model("mlp", input_shape=dataset.input_shape, num_classes=10, generator=generator).to(device)
    parts = [indices.to(device) for indices in parts]
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = SAMPLES_PER_CLIENT if algorithm == "fedsgd" else 4

    def one_round() -> None:
        global_state = global_model.state_dict()
        total = [torch.zeros_like(p) for p in global_model.parameters()]
        for indices in parts:
            local_model.load_state_dict(global_state)
            optimizer = torch.optim.SGD(local_model.parameters(), lr=0.1)
            order = indices[torch.randperm(len(indices), generator=generator).to(device)]
            for start in range(0, len(order), batch):
                chosen = order[start : start + batch]
                optimizer.zero_grad()
                loss_fn(local_model(inputs[chosen]), targets[chosen]).backward()
                optimizer.step()
            with torch.no_grad():
                for acc, local, glob in zip(total, local_model.parameters(), global_model.parameters(), strict=True):
                    acc += local - glob

    return _best_of({"reference": one_round}, min_cpu_seconds=1.0)["reference"]


def _one_setting(n_clients: int, algorithm: str) -> dict[str, Any]:
    training = _training(n_clients, algorithm)
    simulation = _simulation(n_clients, algorithm)
    reference, reference_wall = _reference_loop(n_clients, algorithm)
    vectorised_round = n_clients / training["vectorised_updates_per_cpu_s"]
    return {
        "n_clients": n_clients,
        "algorithm": algorithm,
        "samples_per_client": SAMPLES_PER_CLIENT,
        "training": training,
        "simulation": simulation,
        "reference_loop_updates_per_cpu_s": round(n_clients / reference, 1),
        "training_speedup_vs_reference_loop": round(reference / vectorised_round, 2),
        "training_speedup_vs_reference_loop_wall": round(
            reference_wall / (training["vectorised_round_wall_ms"] / 1000), 2
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _truth_only_bytes(transcript: Any) -> int:
    """Bytes of the storages that the ground truth references and no view or record does."""

    def storages(tensors: Any) -> dict[int, int]:
        found = {}
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                found[storage.data_ptr()] = storage.nbytes()
        return found

    seen: dict[int, int] = {}
    for record in transcript.rounds:
        seen |= storages([record.params_before, record.params_after])
        for view in record.views.values():
            seen |= storages([view.params_before, view.params_after, *view.received.values(), *view.own.values()])
    truth: dict[int, int] = {}
    for round_truth in transcript.truth.rounds:
        truth |= storages([round_truth.updates, round_truth.weights, *round_truth.sample_order.values()])
    return sum(size for pointer, size in truth.items() if pointer not in seen)


def _record_truth(scheme: str, record_truth: str) -> dict[str, Any]:
    from leakage import simulate

    options: dict[str, Any] = {"record_truth": record_truth}
    if record_truth == "targets":
        options["truth_clients"] = [0]
    start = time.perf_counter()
    transcript = simulate(scheme=scheme, rounds=5, **{**_settings(1000, "fedsgd"), **options})
    kept = transcript.truth.kept().to_dict()
    return {
        "scheme": scheme,
        "record_truth": record_truth,
        "n_clients": 1000,
        "rounds": 5,
        "truth": {**kept, "clients": len(kept["clients"])},
        "truth_only_mb": round(_truth_only_bytes(transcript) / 2**20, 1),
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _end_to_end() -> dict[str, Any]:
    from leakage import simulate

    start = time.perf_counter()
    simulate(dataset="digits", model="mlp", n_clients=1000, rounds=20, algorithm="fedsgd",
             batch_size=None, lr=0.1, seed=0, device=DEVICE)
    seconds = time.perf_counter() - start
    return {
        "setting": f"1000 clients x 20 rounds, fedsgd, mlp, all of digits (iid), on {DEVICE}",
        "seconds": round(seconds, 2),
        "target_seconds": 20,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _in_subprocess(*args: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--device", DEVICE, "--child", *args], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only N=10 and N=100, no end-to-end or record_truth runs")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the clients train")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch finds no CUDA GPU on this machine")
    torch.set_num_threads(1)
    if args.child:
        if args.child[0] == "record_truth":
            result = _record_truth(args.child[1], args.child[2])
        elif args.child[0] == "end_to_end":
            result = _end_to_end()
        else:
            result = _one_setting(int(args.child[0]), args.child[1])
        print(json.dumps(result))
        return
    counts = CLIENT_COUNTS[:2] if args.quick else CLIENT_COUNTS
    results = [_in_subprocess(str(n), algorithm) for n in counts for algorithm in ALGORITHMS]
    report: dict[str, Any] = {
        "torch_threads": 1,
        "device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu",
        "timing": "CPU seconds of the process, best of interleaved repeats"
        + ("; on cuda read speedup_wall (CPU seconds count only kernel launches)" if DEVICE == "cuda" else ""),
        "speedups": {
            part: {
                algorithm: {str(r["n_clients"]): r[part]["speedup"] for r in results if r["algorithm"] == algorithm}
                for algorithm in ALGORITHMS
            }
            for part in ("training", "simulation")
        },
        "speedups_wall": {
            part: {
                algorithm: {
                    str(r["n_clients"]): r[part]["speedup_wall"] for r in results if r["algorithm"] == algorithm
                }
                for algorithm in ALGORITHMS
            }
            for part in ("training", "simulation")
        },
        "max_abs_difference": max(r["training"]["max_abs_difference"] for r in results),
        "results": results,
    }
    if not args.quick:
        report["end_to_end"] = _in_subprocess("end_to_end")
    if not args.quick and DEVICE == "cpu":
        report["record_truth"] = [
            _in_subprocess("record_truth", scheme, record_truth)
            for scheme in ("plain", "mpc")
            for record_truth in ("all", "targets")
        ]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
