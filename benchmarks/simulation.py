"""Client updates per second of the simulator: vectorised (vmap) against per-client loops.

Prints one JSON object ``{"results": [...], ...}``. Each setting runs in its own
subprocess so ``peak_rss_mb`` is that setting's own peak. Every setting gives each of
N clients 8 ``digits`` samples (drawn with replacement when N x 8 exceeds the dataset)
and trains ``mlp``; FedSGD takes one step on the 8 samples, FedAvg one local epoch in
batches of 4. Three ways of computing the same round are timed in the same process,
with one torch thread:

- ``vectorised``: the simulator with ``vectorise=True`` (torch.func vmap over clients);
- ``loop``: the simulator with ``vectorise=False`` (its per-client functional loop);
- ``reference_loop``: a plain PyTorch loop (an ``nn.Module`` and ``torch.optim.SGD``
  per client), the way FL simulators usually train clients.

``speedup`` is vectorised over loop; ``speedup_vs_reference`` vectorised over the plain loop.
A last entry times 1000 clients x 20 rounds of FedSGD on all of ``digits`` end to end.

Usage: python benchmarks/simulation.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

SAMPLES_PER_CLIENT = 8
CLIENT_COUNTS = (10, 100, 1000)
ALGORITHMS = ("fedsgd", "fedavg")


def _settings(n_clients: int, algorithm: str) -> dict:
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
    )


def _timed(function, *, min_seconds: float) -> float:
    """Seconds per call of ``function``: the best of repeated runs lasting ``min_seconds``."""
    function()  # warm up
    best = float("inf")
    spent = 0.0
    while spent < min_seconds:
        start = time.perf_counter()
        function()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
    return best


def _reference_loop(n_clients: int, algorithm: str, rounds: int) -> float:
    """Updates per second of a plain per-client nn.Module + SGD loop (same data, same model)."""
    from leakage.data import load_dataset, partition_dataset
    from leakage.models import create_model
    from leakage.seeding import numpy_rng

    settings = _settings(n_clients, algorithm)
    dataset = load_dataset("digits")
    parts = partition_dataset(
        "iid", dataset.targets, n_clients, rng=numpy_rng(0, 0), **settings["partition_options"]
    )
    generator = torch.Generator().manual_seed(0)
    global_model = create_model("mlp", input_shape=dataset.input_shape, num_classes=10, generator=generator)
    local_model = create_model("mlp", input_shape=dataset.input_shape, num_classes=10, generator=generator)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = SAMPLES_PER_CLIENT if algorithm == "fedsgd" else 4

    def one_round() -> None:
        global_state = global_model.state_dict()
        total = [torch.zeros_like(p) for p in global_model.parameters()]
        for indices in parts:
            local_model.load_state_dict(global_state)
            optimizer = torch.optim.SGD(local_model.parameters(), lr=0.1)
            order = indices[torch.randperm(len(indices), generator=generator)]
            for start in range(0, len(order), batch):
                chosen = order[start : start + batch]
                optimizer.zero_grad()
                loss_fn(local_model(dataset.inputs[chosen]), dataset.targets[chosen]).backward()
                optimizer.step()
            with torch.no_grad():
                for acc, local, glob in zip(total, local_model.parameters(), global_model.parameters()):
                    acc += local - glob

    seconds = _timed(lambda: [one_round() for _ in range(rounds)], min_seconds=1.0)
    return n_clients * rounds / seconds


def _one_setting(n_clients: int, algorithm: str) -> dict:
    from leakage.simulation import SimulationSettings, Simulator

    rounds = 3
    rates = {}
    for label, vectorise in (("vectorised", True), ("loop", False)):
        settings = SimulationSettings(rounds=rounds, vectorise=vectorise, **_settings(n_clients, algorithm))
        simulator = Simulator(settings)
        seconds = _timed(simulator.run, min_seconds=2.0)
        rates[label] = n_clients * rounds / seconds
    reference = _reference_loop(n_clients, algorithm, rounds)
    return {
        "n_clients": n_clients,
        "algorithm": algorithm,
        "samples_per_client": SAMPLES_PER_CLIENT,
        "vectorised_updates_per_s": round(rates["vectorised"], 1),
        "loop_updates_per_s": round(rates["loop"], 1),
        "reference_loop_updates_per_s": round(reference, 1),
        "speedup": round(rates["vectorised"] / rates["loop"], 2),
        "speedup_vs_reference": round(rates["vectorised"] / reference, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _end_to_end() -> dict:
    from leakage import simulate

    start = time.perf_counter()
    simulate(dataset="digits", model="mlp", n_clients=1000, rounds=20, algorithm="fedsgd",
             batch_size=None, lr=0.1, seed=0)
    seconds = time.perf_counter() - start
    return {
        "setting": "1000 clients x 20 rounds, fedsgd, mlp, all of digits (iid)",
        "seconds": round(seconds, 2),
        "target_seconds": 20,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _in_subprocess(*args: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only N=10 and N=100")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.child:
        result = _end_to_end() if args.child[0] == "end_to_end" else _one_setting(int(args.child[0]), args.child[1])
        print(json.dumps(result))
        return
    counts = CLIENT_COUNTS[:2] if args.quick else CLIENT_COUNTS
    results = [_in_subprocess(str(n), algorithm) for n in counts for algorithm in ALGORITHMS]
    report = {"torch_threads": 1, "results": results}
    if not args.quick:
        report["end_to_end"] = _in_subprocess("end_to_end")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
