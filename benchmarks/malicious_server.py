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
  (:func:`leakage.quantify.model_inconsistency_round`);
- ``samples``: the model-modification attacks, one FedSGD round of 8 digits per client
  read from the aggregate: ``imprint`` (Fowl et al., k = 1024 and 4096 bins, a random
  measurement direction), ``imprint_with_inconsistency`` (the imprint model to the target
  alone, dead models to the rest: its samples, attributed) and ``trap_weights``
  (Boenisch et al., a 1000-unit MLP). The fraction of samples above 30 dB after
  one-to-one matching, of all and of the target's; whether they are attributed to the
  target; and how each check meets them: binding the model aborts only a round with
  different models, vetting only an architecture other than the announced ``mlp``,
  and the protocol checks see nothing (every client holds the same model). At N = 1000
  the digits are drawn with replacement (8000 samples of 1797 images).

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
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from defenses.secure_aggregation import (
    CHECK_NAMES,
    ClientChecks,
    ProtocolConfig,
    SecureAggregation,
    architecture_digest,
    complete_graph,
    default_degree,
    fewest_corrupt,
    harary_graph,
    key_substitution,
    model_digest,
    run_protocol,
    survivor_split,
    sybil_fill,
)
from leakage import load_dataset
from leakage.models import create_model
from leakage.quantify.inconsistency import model_inconsistency_round

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


def _checks(check: str, clients: Sequence[int], architecture: bytes) -> tuple[ClientChecks | None, dict[int, Any]]:
    """The clients' checks for one cell, built as the scheme builds them, and their identity keys."""
    if check == "none":
        return None, {}
    names = CHECK_NAMES if check == "all" else (check,)
    scheme = SecureAggregation(checks=names, assumed_corrupt=ASSUMED_CORRUPT)
    return scheme.client_checks(clients, architecture=architecture)


def protocol_cell(attack: str, n: int, check: str, repeats: int, architecture: bytes) -> dict[str, Any]:
    """One attack x check at N = n, over ``repeats`` rounds; and the honest server's rounds."""
    wins = aborts = honest_aborts = 0
    started = time.perf_counter()
    digest = model_digest(torch.zeros(1), architecture=architecture)  # every client holds the same model here
    for repeat in range(repeats):
        rng = np.random.default_rng(repeat)
        config = _config(n, check, digest)
        inputs = {c: rng.integers(0, 1 << 32, LENGTH, dtype=np.uint64).astype(np.uint32) for c in config.neighbours}
        checks, keys = _checks(check, list(config.neighbours), architecture)
        digests = dict.fromkeys(config.neighbours, digest)
        if attack == "survivor_split":
            outcome = survivor_split(inputs, config, target=0, corrupt=fewest_corrupt(config, 0), checks=checks,
                                     signing_keys=keys)
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
        checks, keys = _checks(check, range(n), architecture)
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


def _all_checks_outcome(same_model_for_all: bool, same_architecture: bool) -> dict[str, str]:
    """How each check meets a model-modification attack, from what it compares (each tested on the protocol)."""
    return {check: ("aborts" if (check in ("bind_model", "all") and not same_model_for_all)
                    or (check in ("vet_model", "all") and not same_architecture) else "passes")
            for check in CHECKS}


def sample_rows(n: int, data: Any) -> dict[str, Any]:
    """Imprint (k = 1024 and 4096), imprint on the target alone with dead models elsewhere, and trap weights.

    One FedSGD round of ``n`` clients of 8 digits; the server reads only the aggregate (the
    model change secure aggregation releases). Fractions: samples above 30 dB after
    one-to-one matching, of all ``8n`` and of the target's 8.
    """
    from torch import nn

    from attacks import Knowledge
    from attacks.imprint import ImprintAttack, ImprintBlock, match_samples, recover_from_imprint
    from attacks.trap_weights import TrapWeightsAttack, install_trap_weights
    from leakage import simulate

    rows: dict[str, Any] = {}
    replacement = n * 8 > len(data)
    partition = {"samples_per_client": 8, "replacement": replacement}
    generator = torch.Generator().manual_seed(0)
    auxiliary = data.inputs[torch.randperm(len(data), generator=generator)[:500]]

    def score(found: Any, transcript: Any) -> dict[str, Any]:
        clients = transcript.truth.rounds[0].client_ids
        indices = torch.cat([transcript.truth.partition[c] for c in clients])
        match = match_samples(found, data.denormalize(data.inputs[indices]), data_range=1.0)
        target = torch.arange(8) + 8 * list(clients).index(0)
        return {"all_fraction_30db": round(match.fraction_recovered(30.0), 4),
                "target_fraction_30db": round(match.fraction_recovered(30.0, target), 4),
                "distinct_samples": int(indices.unique().numel())}

    for bins in (1024, 4096):
        started = time.perf_counter()
        block = ImprintBlock.from_auxiliary(auxiliary, bins, measurement="random", generator=generator)
        model = nn.Sequential(block, create_model("mlp", input_shape=data.input_shape, num_classes=10,
                                                  generator=generator))
        run = simulate(dataset=data, model=model, n_clients=n, rounds=1, algorithm="fedsgd", batch_size=8, seed=0,
                       partition_options=partition, record_truth="targets", truth_clients=(0,))
        found = ImprintAttack().run(run.views_of("server"), Knowledge.from_dataset(data, model, lr=0.1))
        rows[f"imprint_k{bins}"] = {**score(found.raw_inputs, run), "attributed": False,
                                    "checks": _all_checks_outcome(True, False),
                                    "seconds": round(time.perf_counter() - started, 2)}
    # imprint sent to the target alone, dead models to everyone else: its samples, attributed
    started = time.perf_counter()
    block = ImprintBlock.from_auxiliary(auxiliary, 1024, measurement="random", generator=generator)
    model = nn.Sequential(block, create_model("mlp", input_shape=data.input_shape, num_classes=10,
                                              generator=generator))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(1))
    clients = [(data.inputs[order[(8 * i) % len(data):][:8]], data.targets[order[(8 * i) % len(data):][:8]])
               for i in range(n)]
    params = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    result = model_inconsistency_round(model, params, clients, target=0, lr=0.1, protocol=False)
    assert result.estimate is not None
    weights = result.estimate[: block.first.weight.numel()].reshape(block.first.weight.shape)
    biases = result.estimate[block.first.weight.numel(): block.first.weight.numel() + block.num_bins]
    samples, _ = recover_from_imprint(weights, biases)
    found_raw = data.denormalize(samples.reshape(-1, *data.input_shape))
    match = match_samples(found_raw, data.denormalize(clients[0][0]), data_range=1.0)
    rows["imprint_with_inconsistency"] = {"target_fraction_30db": round(match.fraction_recovered(30.0), 4),
                                          "attributed": True, "checks": _all_checks_outcome(False, False),
                                          "seconds": round(time.perf_counter() - started, 2)}
    started = time.perf_counter()
    model = create_model("mlp", input_shape=data.input_shape, num_classes=10, generator=generator, hidden=(1000,))
    install_trap_weights(model, data.input_shape, mean=data.mean, std=data.std, generator=generator)
    run = simulate(dataset=data, model=model, n_clients=n, rounds=1, algorithm="fedsgd", batch_size=8, seed=0,
                   partition_options=partition, record_truth="targets", truth_clients=(0,))
    found = TrapWeightsAttack().run(run.views_of("server"), Knowledge.from_dataset(data, model, lr=0.1))
    rows["trap_weights"] = {**score(found.raw_inputs, run), "attributed": False,
                            "checks": _all_checks_outcome(True, True), "seconds": round(time.perf_counter() - started, 2)}
    return rows


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
    samples: dict[str, dict[str, Any]] = {}
    for n in sizes:
        cells: dict[str, dict[str, Any]] = {}
        for attack in ("survivor_split", "key_substitution", "sybil"):
            cells[attack] = {check: protocol_cell(attack, n, check, repeats if n < 1000 else 1, architecture)
                             for check in CHECKS}
        cells["model_inconsistency"] = {check: inconsistency_cell(n, check, repeats if n < 1000 else 1, data, net)
                                        for check in CHECKS}
        matrix[str(n)] = cells
        samples[str(n)] = sample_rows(n, data)
    honest = {n: max(cells["survivor_split"][check]["honest_false_abort_rate"] for check in CHECKS)
              for n, cells in matrix.items()}
    stopped_by: dict[str, dict[str, list[str]]] = {
        n: {attack: [check for check, cell in row.items() if check != "none" and cell["success"] == 0]
            for attack, row in cells.items()} for n, cells in matrix.items()}
    print(json.dumps({"sizes": sizes, "repeats": repeats, "assumed_corrupt": ASSUMED_CORRUPT,
                      "torch_threads": torch.get_num_threads(), "matrix": matrix, "samples": samples,
                      "honest_false_abort_rate_max": honest, "stopped_by": stopped_by,
                      "seconds": round(time.perf_counter() - started, 1)}, indent=1))


if __name__ == "__main__":
    main()

