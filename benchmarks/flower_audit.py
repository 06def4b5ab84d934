"""Auditing a real Flower run: what the recording shows, how long the audit takes, against our simulator.

Prints one JSON object (Flower's own log goes to stderr). Part of issue 15, "Audit a real
federated run": the mission's claim measured on a framework nobody here wrote.

- ``secagg``: for N = 2 and 20 clients holding one digit each (scikit-learn's digits, a
  sigmoid MLP with 32 hidden units, FedSGD, batch 1, lr 0.1, 2 rounds), a real Flower
  1.42 simulation in Flower's own engine under its SecAgg+ workflow, recorded by
  ``leakage.integrations.flower`` (client 0's view, client 1 a canary), then
  ``score_recording`` as ``leakage score --recording`` runs it: client 0's round-difference
  cosine and relative error against the canary's recorded update, its leakage, iDLG's
  PSNR on the recovered update, and the server's (aggregate only). The reference is the
  same setting (same initial model, same images) in our simulator under ``secagg+``,
  scored the same way: its figures, and its simulation time against Flower's (after one
  warm-up call, which pays the simulator's one-off set-up).
- ``plain``: Flower's plain FedAvg (3 clients, the whole of digits split iid by our
  simulator's partition, full-batch FedAvg, 2 rounds), whose training is deterministic,
  against our simulator's ``plain`` on the same partition and initial model: the largest
  difference between the two runs' global models, and whether ``leakage score`` gives
  the same observer x attack rows (values within 1e-3). The bridge's ``announce`` tells
  clients who took part and their weights, as the simulator's ``plain`` does; Flower
  alone tells them nothing, and a participant's round difference is then not applicable.

Timings are wall seconds; Flower's include Ray's start-up (about 10 s on this machine),
which it pays once per simulation. One torch thread in this process.

Usage: python benchmarks/flower_audit.py [--parts secagg,plain]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _quiet_flower() -> None:
    for name in ("flwr", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _rows(rows: Any) -> dict[str, dict[str, Any]]:
    return {
        f"{row.observer}/{row.attack}": {"status": row.status, "metric": row.metric, "value": round(row.value, 7),
                                         "baseline": round(row.baseline, 4), "leakage": round(row.leakage, 4)}
        for row in rows
    }


def secagg_part(work: Path, sizes: tuple[int, ...]) -> dict[str, Any]:
    from leakage import load_dataset, simulate
    from leakage.integrations.flower import run_flower_simulation
    from leakage.metrics import relative_error
    from leakage.models import create_model
    from leakage.quantify import AttackSpec, DeploymentSpec
    from leakage.quantify.recording import score_recording
    from leakage.quantify.scoring import score_transcript
    from leakage.recording import AggregationRule, RecordedTask, read_recording

    dataset = load_dataset("digits")
    options = {"hidden": [32], "activation": "sigmoid"}
    rule = AggregationRule(algorithm="fedsgd", lr=0.1, batch_size=1)
    attacks = (AttackSpec("round_difference"), AttackSpec("idlg", {"max_evals": 500, "restarts": 1}))
    spec = DeploymentSpec(observers=("server", "participant", "public"), attacks=attacks)
    results: dict[str, Any] = {}
    # the simulator's first call in a process pays its one-off set-up (imports, vmap); not Flower's comparison
    simulate(dataset=dataset.subset(torch.arange(2)), model="mlp", n_clients=2, rounds=1, algorithm="fedsgd",
             batch_size=1, scheme="secagg+", seed=0)
    for size in sizes:
        model = create_model("mlp", input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                             generator=torch.Generator().manual_seed(0), **options)
        started = time.perf_counter()
        folder = run_flower_simulation(
            work / f"secagg-{size}", dataset=dataset, model=model, partition=[[i] for i in range(size)], rounds=2,
            rule=rule, task=RecordedTask("digits", "mlp", model_options=options), secure_aggregation=True,
            recorded_clients=(0,), canaries=(1,), max_weight=1.0,
        )
        flower_seconds = time.perf_counter() - started
        report = score_recording(folder, spec)
        recording = read_recording(folder)
        estimate = _participant_estimate(recording.transcript)
        truth = recording.transcript.truth.rounds[0].update_of(1)
        started = time.perf_counter()
        reference = simulate(
            dataset=dataset.subset(torch.arange(size)), model=model, n_clients=size, partition="iid", rounds=2,
            algorithm="fedsgd", batch_size=1, lr=0.1, scheme="secagg+", seed=0,
        )
        simulator_seconds = time.perf_counter() - started
        reference_rows = score_transcript(
            reference, dataset.subset(torch.arange(size)), observers=spec.observers,
            attacks=[(a.name, a.options) for a in attacks], target=1, seed=0,
        )
        results[f"n={size}"] = {
            "flower_seconds": round(flower_seconds, 2),
            "audit_seconds": round(report.timings["total"], 3),
            "recording_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
            # client 0's subtraction against the canary's recorded update (at N > 2 a mean of N - 1 updates)
            "round_difference_relative_error": float(f"{relative_error(estimate, truth):.3g}"),
            "rows": _rows(r.row for r in report.results),
            "reference_simulator": {
                "seconds": round(simulator_seconds, 3),
                "flower_over_simulator_time": round(flower_seconds / simulator_seconds, 1),
                "rows": _rows(reference_rows),
            },
        }
    return results


def _participant_estimate(transcript: Any) -> torch.Tensor:
    from attacks import create_attack

    estimate = create_attack("round_difference").run(transcript.views_of("client:0"))
    return estimate.recovered[0].update


def plain_part(work: Path) -> dict[str, Any]:
    from leakage import load_dataset, simulate
    from leakage.integrations.flower import run_flower_simulation
    from leakage.quantify import AttackSpec, DeploymentSpec
    from leakage.quantify.recording import score_recording
    from leakage.quantify.scoring import score_transcript
    from leakage.recording import AggregationRule, RecordedTask, read_recording

    dataset = load_dataset("digits")
    options = {"hidden": [32], "activation": "sigmoid"}
    settings = {"n_clients": 3, "rounds": 2, "algorithm": "fedavg", "batch_size": None, "local_epochs": 1, "lr": 0.1}
    simulated = simulate(dataset=dataset, model="mlp", model_options=options, scheme="plain", seed=0, **settings)
    initial = simulated.build_model(simulated.initial_params, simulated.initial_buffers)
    started = time.perf_counter()
    folder = run_flower_simulation(
        work / "plain", dataset=dataset, model=initial, partition=list(simulated.truth.partition), rounds=2,
        rule=AggregationRule(algorithm="fedavg", lr=0.1, batch_size=None), secure_aggregation=False,
        task=RecordedTask("digits", "mlp", model_options=options), recorded_clients=(0, 1, 2), canaries=(0,),
        announce=True,  # the server tells clients who took part and their weights, as the simulator's plain does
    )
    flower_seconds = time.perf_counter() - started
    recorded = read_recording(folder).transcript
    gap = max(
        float((a.params_after - b.params_after).abs().max()) for a, b in zip(recorded.rounds, simulated.rounds, strict=True)
    )
    spec = DeploymentSpec(observers=("server", "participant", "coalition", "public"),
                          attacks=(AttackSpec("round_difference"),))
    flower_rows = _rows(r.row for r in score_recording(folder, spec).results)
    simulator_rows = _rows(score_transcript(simulated, dataset, observers=spec.observers,
                                            attacks=[("round_difference", {})], target=0, seed=0))
    same = flower_rows.keys() == simulator_rows.keys() and all(
        flower_rows[k]["status"] == simulator_rows[k]["status"]
        and abs(flower_rows[k]["value"] - simulator_rows[k]["value"]) <= 1e-3
        for k in flower_rows
    )
    return {"flower_seconds": round(flower_seconds, 2), "largest_global_model_difference": gap,
            "same_rows_within_1e-3": same, "flower_rows": flower_rows, "simulator_rows": simulator_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="secagg,plain")
    args = parser.parse_args()
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - {"secagg", "plain"})
    if unknown:
        parser.error(f"--parts: unknown part {unknown[0]!r}; choose from secagg, plain")
    torch.set_num_threads(1)
    _quiet_flower()
    work = Path(tempfile.mkdtemp())
    output: dict[str, Any] = {"benchmark": "flower_audit", "torch_threads": 1}
    if "secagg" in parts:
        print("secagg: Flower SecAgg+ at 2 and 20 clients", file=sys.stderr)
        output["secagg"] = secagg_part(work, (2, 20))
    if "plain" in parts:
        print("plain: Flower FedAvg against the simulator", file=sys.stderr)
        output["plain"] = plain_part(work)
    print(json.dumps(output, indent=1))


if __name__ == "__main__":
    main()
