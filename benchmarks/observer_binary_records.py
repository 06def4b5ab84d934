"""Exact recovery of a client's 0/1 records from its Taylor-logistic uploads (``binary_records``).

Li, Huang, Chen, Hong, "Quantification of the Leakage in Federated Learning" (2019).
Every case simulates a ``plain`` FedSGD deployment of the ``logreg`` model with the
Taylor logistic loss on ``binary_features`` (2,000 samples, ``d`` features): client 0
holds exactly ``n`` records and, with ``batch_size = 50 >= n``, uses all of them every
round, while the 9 other clients draw random batches of 50, so the global model moves
in varying directions. The server's view of every round goes to ``binary_records``.

Prints one JSON object (``measure()``):

- ``cases``: per ``(d, n)``: ``status``; ``exact_rate``, the fraction of the client's
  true records recovered exactly, as multisets (0 unless recovered); ``solve_seconds``
  (the attack's wall time, one thread); ``rounds_used`` (all simulated rounds);
  ``rounds_theory`` (:func:`attacks.binary_records.minimum_rounds`) and
  ``rounds_exact``, the fewest leading rounds whose fit already gives the exact
  statistics (every record count right); the fit's condition number and integrality
  error; the search's nodes, candidate rows and method.
- ``summary``: cases per status, the cases provably not unique, the largest ``n``
  recovered per ``d``.
- ``beyond_grid``: ``d = 32``, ``n = 40`` (not in the grid; recovering it would beat
  the reference figures).
- ``full_batch``: every client trains on all its data every round (plain gradient
  descent): the models move along a Krylov sequence, the fit is ill-conditioned and
  the attack says so instead of returning records.

Usage: OMP_NUM_THREADS=1 python benchmarks/observer_binary_records.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from attacks.binary_records import (
    BinaryRecordsAttack,
    effective_pairs,
    fit_statistics,
    minimum_rounds,
    record_gram,
)
from attacks.round_difference import target_observations
from leakage import load_dataset, simulate
from leakage.transcript import Transcript

FEATURES = (8, 16, 32)
SIZES = (1, 2, 3, 5, 10, 20, 30, 50)
QUICK_FEATURES = (8, 16)
QUICK_SIZES = (1, 5, 20)
DATASET_SIZE = 2000
BATCH = 50
CLIENTS = 10


def _simulate(features: int, size: int, rounds: int, seed: int, *, full_batch: bool = False) -> Transcript:
    return simulate(
        dataset="binary_features",
        dataset_options={"n_features": features, "n_samples": DATASET_SIZE, "seed": seed},
        model="logreg",
        loss="taylor_logistic",
        algorithm="fedsgd",
        partition="target",
        partition_options={"target_size": size},
        batch_size=None if full_batch else BATCH,
        n_clients=CLIENTS,
        rounds=rounds,
        lr=0.1,
        scheme="plain",
        seed=seed,
    )


def _true_records(transcript: Transcript, features: int, seed: int) -> torch.Tensor:
    """The target's records ``[n, d+1]`` (features, then label), as int64."""
    data = load_dataset("binary_features", n_features=features, n_samples=DATASET_SIZE, seed=seed)
    indices = transcript.truth.partition[0]
    return torch.cat([data.inputs[indices], data.targets[indices, None].float()], dim=1).round().long()


def _exact_rate(found: torch.Tensor | None, truth: torch.Tensor) -> float:
    """Fraction of the true records matched by recovered ones, as multisets."""
    if found is None:
        return 0.0
    remaining = Counter(tuple(row) for row in truth.tolist())
    matched = 0
    for row in found.tolist():
        key = tuple(row)
        if remaining[key] > 0:
            remaining[key] -= 1
            matched += 1
    return matched / truth.shape[0]


def _true_gram(truth: torch.Tensor) -> torch.Tensor:
    augmented = torch.cat([truth, torch.ones(truth.shape[0], 1, dtype=torch.int64)], dim=1)
    return augmented.T @ augmented


def _rounds_exact(transcript: Transcript, truth: torch.Tensor, start: int) -> int | None:
    """Fewest leading rounds whose least-squares fit rounds to the true record counts."""
    observations = target_observations(transcript.views_of("server"), 0)
    weights, gradients = effective_pairs(
        transcript.layout,
        [obs.params for obs in observations],
        [obs.value for obs in observations],
        [0.1] * len(observations),
    )
    expected = _true_gram(truth)
    for rounds in range(max(start - 2, 2), len(observations) + 1):
        fit = fit_statistics(weights[:rounds], gradients[:rounds])
        if fit.is_determined and torch.equal(record_gram(fit, truth.shape[0]), expected):
            return rounds
    return None


def _case(features: int, size: int, seed: int, max_nodes: int) -> dict[str, Any]:
    rounds = minimum_rounds(features) + 8
    transcript = _simulate(features, size, rounds, seed)
    truth = _true_records(transcript, features, seed)
    attack = BinaryRecordsAttack(client=0, max_nodes=max_nodes)
    result = attack.run(transcript.views_of("server"))
    found = None
    if result.features is not None and result.labels is not None:
        found = torch.cat([result.features, result.labels[:, None].float()], dim=1).round().long()
    details = dict(result.details)
    return {
        "d": features,
        "n": size,
        "seed": seed,
        "status": result.status,
        "exact_rate": _exact_rate(found, truth),
        "solve_seconds": round(result.seconds, 4),
        "rounds_used": result.rounds_used,
        "rounds_theory": minimum_rounds(features),
        "rounds_exact": _rounds_exact(transcript, truth, minimum_rounds(features)),
        "num_samples": result.num_samples,
        "condition_number": round(result.condition_number, 1),
        "integrality_error": result.integrality_error,
        "count_uncertainty": details.get("count_uncertainty"),
        "search_nodes": int(details.get("search_nodes", 0)),
        "candidate_rows": int(details.get("candidate_rows", 0)),
        "search_seconds": round(details.get("search_seconds", 0.0), 4),
    }


def _full_batch(features: int, size: int, seed: int) -> dict[str, Any]:
    rounds = 2 * (features + 1)
    transcript = _simulate(features, size, rounds, seed, full_batch=True)
    result = BinaryRecordsAttack(client=0).run(transcript.views_of("server"))
    return {
        "d": features,
        "n": size,
        "rounds_used": result.rounds_used,
        "status": result.status,
        "condition_number": result.condition_number,
        "reason": result.reason,
        "records_returned": result.features is not None,
        "solve_seconds": round(result.seconds, 4),
    }


def measure(quick: bool = False) -> dict[str, Any]:
    """Run every case and return the JSON-ready figures."""
    torch.set_num_threads(1)
    features_list = QUICK_FEATURES if quick else FEATURES
    sizes = QUICK_SIZES if quick else SIZES
    max_nodes = 3_000
    started = time.perf_counter()
    cases = [_case(features, size, 0, max_nodes) for features in features_list for size in sizes]
    extra = [] if quick else [_case(32, 40, 0, max_nodes)]  # would beat the reference figure
    statuses = Counter(case["status"] for case in cases)
    largest: dict[str, int] = {}
    for case in cases:
        if case["status"] == "recovered":
            largest[str(case["d"])] = max(largest.get(str(case["d"]), 0), case["n"])
    return {
        "settings": {
            "dataset": "binary_features",
            "dataset_size": DATASET_SIZE,
            "clients": CLIENTS,
            "batch_size": BATCH,
            "lr": 0.1,
            "scheme": "plain",
            "observer": "server",
            "max_nodes": max_nodes,
            "torch_threads": torch.get_num_threads(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "cases": cases,
        "summary": {
            "statuses": dict(sorted(statuses.items())),
            "not_unique": [[case["d"], case["n"]] for case in cases if case["status"] == "not_unique"],
            "largest_n_recovered": largest,
            "mean_exact_rate": sum(case["exact_rate"] for case in cases) / len(cases),
            "max_solve_seconds_recovered": max(
                (case["solve_seconds"] for case in cases if case["status"] == "recovered"), default=0.0
            ),
        },
        "beyond_grid": extra,
        "full_batch": [_full_batch(8, 5, 0)] + ([] if quick else [_full_batch(16, 5, 0)]),
        "total_seconds": round(time.perf_counter() - started, 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset of the cases")
    print(json.dumps(measure(quick=parser.parse_args().quick), indent=2))
