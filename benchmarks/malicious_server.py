"""A malicious server against secure aggregation: each attack x each client check, at N = 10 / 100 / 1000.

Prints one JSON object. Every cell plays real rounds (``--repeats`` of them, fresh keys
each) of :mod:`defenses.secure_aggregation` with honest clients running the checks and
a server that deviates:

- ``survivor_split``: the fewest corrupt clients that beat the default threshold,
  ``2t - n`` for a sharing group of ``n`` and ``t = floor(n / 2) + 1`` (at least 1), split the target's shareholders into "it survived" and "it
  dropped" (:func:`defenses.secure_aggregation.survivor_split`);
- ``key_substitution``: the target gets a roster of server-made keys;
- ``sybil``: the other ``N - 1`` clients are the server's registered identities;
- ``model_inconsistency``: the target gets the real model (``mlp`` on ``digits``, 8
  samples per client, FedSGD), everyone else a dead one
  (:func:`attacks.model_inconsistency.model_inconsistency_round`);
- ``imprint`` / ``trap_weights`` rows are added by their own modules where present.

Checks: ``none``; each alone (``bind_model``, ``signed_keys``, ``consistency_round``
(with signed keys, which it needs), ``min_threshold`` (clients assume 2 corrupt clients
and the deployment sets the smallest threshold they accept, ``floor((n + 2) / 2) + 1``),
``vet_model``); and ``all``. Per cell: ``success`` (the fraction of rounds in which the
server rebuilt the target's input exactly), ``abort_rate`` (rounds aborted or refused by
a client; a round that went on without giving the server the target counts in neither),
``seconds``. ``honest``: the same rounds with an honest server; its ``false_abort_rate``
must be 0. N = 1000 uses SecAgg+'s graph (degree ``default_degree(N)``, the ring order
the server chooses: corrupt clients beside the target); the inconsistency rounds at
N = 1000 sum the encoded updates directly (what the protocol returns; the protocol's
exactness is tested) and apply the model binding by its tested outcome.

Usage: python benchmarks/malicious_server.py [--sizes 10,100,1000] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import torch

from attacks.model_inconsistency import model_inconsistency_round
from defenses.secure_aggregation import (
    ClientChecks,
    ProtocolConfig,
    architecture_digest,
    complete_graph,
    default_degree,
    harary_graph,
    identities,
    key_substitution,
    model_digest,
    run_protocol,
    survivor_split,
    sybil_fill,
)
from leakage import load_dataset
from leakage.models import create_model

CHECKS = ("none", "bind_model", "signed_keys", "consistency_round", "min_threshold", "vet_model", "all")
ASSUMED_CORRUPT = 2
LENGTH = 64  # ring elements per input in the protocol-level attacks


def _graph(n: int) -> dict[int, frozenset[int]]:
    members = list(range(n))
    return complete_graph(members) if n <= 100 else harary_graph(members, default_degree(n), np.random.default_rng(0))


def _config(n: int, check: str, digest: bytes) -> ProtocolConfig:
    graph = _graph(n)
    group = min(len(peers) for peers in graph.values()) + 1
    threshold = group // 2 + 1
    if check in ("min_threshold", "all"):
        threshold = (group + ASSUMED_CORRUPT) // 2 + 1
    bound = check in ("bind_model", "all")
    return ProtocolConfig(os.urandom(16), 32, LENGTH, threshold, graph, model_digest=digest if bound else b"")


def _checks(check: str, directory: dict[int, bytes], architecture: bytes) -> ClientChecks | None:
    if check == "none":
        return None
    every = check == "all"
    return ClientChecks(
        bind_model=every or check == "bind_model",
        directory=directory if every or check in ("signed_keys", "consistency_round") else None,
        consistency_round=every or check == "consistency_round",
        assumed_corrupt=ASSUMED_CORRUPT if every or check == "min_threshold" else None,
        announced_architecture=architecture if every or check == "vet_model" else None,
    )


def protocol_cell(attack: str, n: int, check: str, repeats: int, architecture: bytes) -> dict[str, Any]:
    """One attack x check at N = n, over ``repeats`` rounds; and the honest server's rounds."""
    wins = aborts = honest_aborts = 0
    started = time.perf_counter()
    digest = model_digest(torch.zeros(1), architecture=architecture)  # every client holds the same model here
    for repeat in range(repeats):
        rng = np.random.default_rng(repeat)
        config = _config(n, check, digest)
        inputs = {c: rng.integers(0, 1 << 32, LENGTH, dtype=np.uint64).astype(np.uint32) for c in config.neighbours}
        keys, directory = identities(list(config.neighbours))
        checks = _checks(check, directory, architecture)
        digests = dict.fromkeys(config.neighbours, digest)
        if attack == "survivor_split":
            group = sorted(config.neighbours[0])
            default = (len(group) + 1) // 2 + 1  # the fewest corrupt clients that beat the default threshold
            corrupt = group[: max(1, 2 * default - (len(group) + 1))]
            outcome = survivor_split(inputs, config, target=0, corrupt=corrupt, checks=checks, signing_keys=keys)
        elif attack == "key_substitution":
            outcome = key_substitution(inputs, config, target=0, checks=checks, signing_keys=keys)
        else:
            outcome = sybil_fill(inputs[0], config, target=0, checks=checks, signing_keys=keys, model_digests=digests)
        wins += outcome.exact
        aborts += outcome.aborted is not None
        if attack == "survivor_split":  # the honest server's round with the same checks, once per repeat
            honest = run_protocol(inputs, config, checks=checks, signing_keys=keys, model_digests=digests)
            honest_aborts += honest.total is None
    return {"success": wins / repeats, "abort_rate": aborts / repeats,
            **({"honest_false_abort_rate": honest_aborts / repeats} if attack == "survivor_split" else {}),
            "seconds": round(time.perf_counter() - started, 2)}


def inconsistency_cell(n: int, check: str, repeats: int, data: Any, net: torch.nn.Module) -> dict[str, Any]:
    """Model inconsistency x one check at N = n."""
    params = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    architecture = architecture_digest(net)
    wins = aborts = 0
    errors: list[float] = []
    started = time.perf_counter()
    for repeat in range(repeats):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(repeat))
        clients = [(data.inputs[order[(8 * i) % len(data):][:8]], data.targets[order[(8 * i) % len(data):][:8]])
                   for i in range(n)]
        keys, directory = identities(range(n))
        checks = _checks(check, directory, architecture)
        result = model_inconsistency_round(net, params, clients, target=0, lr=0.1, checks=checks,
                                           signing_keys=keys, protocol=n <= 100,
                                           threshold=_config(n, check, b"").threshold)
        wins += result.exact
        aborts += result.estimate is None
        if result.relative_error is not None:
            errors.append(result.relative_error)
    return {"success": wins / repeats, "abort_rate": aborts / repeats,
            "relative_error_all_coordinates": round(float(np.mean(errors)), 4) if errors else None,
            "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="N = 10 only, one repeat")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [10] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeats = 1 if args.quick else args.repeats
    data = load_dataset("digits")
    net = create_model("mlp", input_shape=data.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0))
    architecture = architecture_digest(net)
    started = time.perf_counter()
    matrix: dict[str, dict[str, dict[str, Any]]] = {}
    for n in sizes:
        cells: dict[str, dict[str, Any]] = {}
        for attack in ("survivor_split", "key_substitution", "sybil"):
            cells[attack] = {check: protocol_cell(attack, n, check, repeats if n < 1000 else 1, architecture)
                             for check in CHECKS}
        cells["model_inconsistency"] = {check: inconsistency_cell(n, check, repeats if n < 1000 else 1, data, net)
                                        for check in CHECKS}
        matrix[str(n)] = cells
    honest = {n: max(cells["survivor_split"][check]["honest_false_abort_rate"] for check in CHECKS)
              for n, cells in matrix.items()}
    stopped_by: dict[str, dict[str, list[str]]] = {
        n: {attack: [check for check, cell in row.items() if check != "none" and cell["success"] == 0]
            for attack, row in cells.items()} for n, cells in matrix.items()}
    print(json.dumps({"sizes": sizes, "repeats": repeats, "assumed_corrupt": ASSUMED_CORRUPT,
                      "torch_threads": torch.get_num_threads(), "matrix": matrix,
                      "honest_false_abort_rate_max": honest, "stopped_by": stopped_by,
                      "seconds": round(time.perf_counter() - started, 1)}, indent=1))


if __name__ == "__main__":
    main()

