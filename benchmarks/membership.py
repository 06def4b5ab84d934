"""Membership inference on the released model: LiRA, RMIA and the loss threshold on ``digits``.

Prints one JSON object. For each case and seed, the digits are shuffled with the seed and
split into the target's training set (``records`` members), ``non_members`` other
candidates, and the attacker's auxiliary data (the rest), all disjoint. The target, an
``mlp`` (one hidden layer of 128, ReLU), is trained centrally with the reference models'
own trainer (:func:`attacks.train_reference_models` with one model: ``epochs`` of plain
SGD, batches of 32, learning rate 0.1), so the benchmark isolates the attack from
federated training; the public observer holds it as the released model.

Cases: ``typical`` (650 records per model, 450 non-members, 697 auxiliary records) and
``overfit`` (200 records per model, 200 non-members: online reference models train on
half of the candidates, which caps them at twice the records per model).

Attacks, with the target's recipe (``knowledge.lr``, epochs, batch size) and reference
models of the target's size (``records_per_model``): ``loss_threshold``; ``lira``
offline and online, each with a variance per record and with the paper's fixed
variance; ``rmia`` offline (``a = 0.3``) and online, ``gamma = 1``. 32 reference
models per run.

Per attack: ``auc`` per seed (and their mean and standard deviation); then, with the
scores of all seeds pooled (LiRA's scores are z-scores or log-likelihood ratios, RMIA's
a fraction of the population, so they share a scale across targets), ``auc`` and for
each FPR limit (0.01%, 0.1%, 1%) the best TPR at a threshold whose false-positive rate
is at most the limit, with the realised FPR and the counts behind it (members,
non-members, true and false positives). ``reference_seconds``: training the 32
reference models of one run; ``seconds``: the whole membership step of one attack
(reference training, evaluation, scores). Per case, ``membership_step_seconds_max`` is
the slowest such step of any attack and seed, and ``all_attacks_seconds_max`` the
slowest seed's time for all seven attacks together. One torch thread; the machine's
load average is printed with the figures, since the timings depend on it.

Observers (``--parts observers``): the same attacks through ``leakage score``'s scoring
(:func:`leakage.quantify.score_transcript`) on federated runs, for the ``server`` and the
``public``. Half of ``digits`` is held out (half of it the non-members scored, half the
attacker's auxiliary data); the rest is split among the clients; the target is client 0.
Runs: ``plain_fedavg`` (10 clients, 5 rounds, 2 local epochs, batches of 10, lr 0.3) and
``dp_fedavg`` (the one-run audit's DP-FedAvg: 100 clients, Poisson sampling 0.1, 100
rounds, clip 1, noise multiplier 1, a trusted server that sees every clipped update).
The server's attacks combine the rounds that show the target's local model (``rounds``:
``max`` of the loss calibrated by the round's starting model, ``mean`` for LiRA and RMIA,
whose reference models start from it); the public's read the released model. Per run, attack and observer: AUC and TPR
at 0.1% and 1% FPR averaged over seeds, per-seed AUCs, and whether the server's figures
were at or above the public's in every seed; ``best_attack_auc``: per seed each
observer's best AUC over the three attacks, and the same comparison.

Usage: python benchmarks/membership.py [--seeds 5] [--quick] [--parts released,observers]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from attacks import Knowledge, create_attack, reference_logits, train_reference_models
from leakage.data import Dataset, load_dataset
from leakage.models import ParameterLayout, create_model
from leakage.views import RoundView

CASES: dict[str, dict[str, int]] = {
    "typical": {"records": 650, "non_members": 450},
    "overfit": {"records": 200, "non_members": 200},
}
EPOCHS, LEARNING_RATE, BATCH_SIZE, HIDDEN = 50, 0.1, 32, (128,)
REFERENCE_MODELS = 32
FPR_LIMITS = (0.0001, 0.001, 0.01)
ATTACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "loss_threshold": ("loss_threshold", {}),
    "lira_offline": ("lira", {"mode": "offline"}),
    "lira_offline_fixed_variance": ("lira", {"mode": "offline", "fixed_variance": True}),
    "lira_online": ("lira", {"mode": "online"}),
    "lira_online_fixed_variance": ("lira", {"mode": "online", "fixed_variance": True}),
    "rmia_offline": ("rmia", {"mode": "offline"}),
    "rmia_online": ("rmia", {"mode": "online"}),
}


def tpr_at_fpr(truth: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], limit: float) -> dict[str, float]:
    """The best TPR at a threshold with FPR <= ``limit``, the realised FPR, and the counts behind them."""
    positives, negatives = int(truth.sum()), int(len(truth) - truth.sum())
    fpr, tpr, thresholds = roc_curve(truth, scores, drop_intermediate=False)
    allowed = np.flatnonzero(fpr <= limit)
    best = allowed[np.argmax(tpr[allowed])]
    return {"fpr_limit": limit, "tpr": float(tpr[best]), "fpr": float(fpr[best]),
            "true_positives": round(tpr[best] * positives), "false_positives": round(fpr[best] * negatives),
            "members": positives, "non_members": negatives, "threshold": float(thresholds[best])}


def released_model(data: Dataset, members: torch.Tensor, seed: int) -> tuple[torch.nn.Module, RoundView, float, float]:
    """The target trained centrally on ``members``, the view the public has of it, and its train / test accuracy."""
    net = create_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                       generator=torch.Generator().manual_seed(seed), hidden=HIDDEN)
    mask = torch.zeros(1, len(data), dtype=torch.bool)
    mask[0, members] = True
    params = train_reference_models(net, mask, data.inputs, data.targets, epochs=EPOCHS, lr=LEARNING_RATE,
                                    batch_size=BATCH_SIZE, generator=torch.Generator().manual_seed(10_000 + seed))
    flat = torch.cat([params[name][0].reshape(-1) for name in ParameterLayout.of(net).names])
    correct = reference_logits(net, params, data.inputs)[0].argmax(dim=1) == data.targets
    return net, RoundView(0, "public", None, flat), float(correct[mask[0]].double().mean()), float(
        correct[~mask[0]].double().mean())


def run_case(data: Dataset, records: int, non_members: int, seeds: Sequence[int], models: int) -> dict[str, Any]:
    """Every attack on the target of every seed; per-seed and pooled figures."""
    per_attack: dict[str, dict[str, list[Any]]] = {name: {"scores": [], "truth": [], "auc": [], "seconds": [],
                                                          "reference_seconds": []} for name in ATTACKS}
    accuracy, steps = [], []
    for seed in seeds:
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        members, others = order[:records], order[records:records + non_members]
        auxiliary = order[records + non_members:]
        net, view, train_accuracy, test_accuracy = released_model(data, members, seed)
        accuracy.append((train_accuracy, test_accuracy))
        knowledge = Knowledge.from_dataset(
            data, net, lr=LEARNING_RATE, batch_size=BATCH_SIZE,
            candidates=data.subset(torch.cat([members, others])), auxiliary=data.subset(auxiliary),
        )
        truth = np.r_[np.ones(records), np.zeros(non_members)]
        step_started = time.perf_counter()
        for label, (name, options) in ATTACKS.items():
            if name != "loss_threshold":
                options = {**options, "reference_models": models, "epochs": EPOCHS, "records_per_model": records}
            result = create_attack(name, **options).run(view, knowledge, generator=torch.Generator().manual_seed(seed))
            scores = result.scores.numpy()
            figures = per_attack[label]
            figures["scores"].append(scores)
            figures["truth"].append(truth)
            figures["auc"].append(float(roc_auc_score(truth, scores)))
            figures["seconds"].append(result.seconds)
            figures["reference_seconds"].append(float(result.details.get("reference_seconds", 0.0)))
        steps.append(time.perf_counter() - step_started)
    return {
        "records_per_model": records, "non_members_per_seed": non_members,
        "auxiliary_per_seed": len(data) - records - non_members, "seeds": list(seeds), "reference_models": models,
        "target_train_accuracy": statistics.mean(a for a, _ in accuracy),
        "target_test_accuracy": statistics.mean(b for _, b in accuracy),
        "membership_step_seconds_max": max(max(figures["seconds"]) for figures in per_attack.values()),
        "all_attacks_seconds_max": max(steps),
        "attacks": {label: summarise(figures) for label, figures in per_attack.items()},
    }


def summarise(figures: Mapping[str, list[Any]]) -> dict[str, Any]:
    """Per-seed AUCs, pooled AUC and TPR at each FPR limit, and the timings of one attack."""
    scores, truth = np.concatenate(figures["scores"]), np.concatenate(figures["truth"])
    aucs = figures["auc"]
    return {
        "auc_mean": statistics.mean(aucs), "auc_std": statistics.stdev(aucs) if len(aucs) > 1 else 0.0,
        "auc_per_seed": [round(value, 4) for value in aucs],
        "pooled": {"auc": float(roc_auc_score(truth, scores)),
                   "tpr_at_fpr": [tpr_at_fpr(truth, scores, limit) for limit in FPR_LIMITS]},
        "seconds_max": max(figures["seconds"]), "reference_seconds_max": max(figures["reference_seconds"]),
        "reference_seconds_mean": statistics.mean(figures["reference_seconds"]),
    }


OBSERVER_ATTACKS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("loss_threshold", {"rounds": "max", "calibration": "auto"}),
    ("lira", {"rounds": "mean", "reference_models": REFERENCE_MODELS}),
    ("rmia", {"rounds": "mean", "reference_models": REFERENCE_MODELS}),
)
OBSERVER_RUNS: dict[str, dict[str, Any]] = {
    "plain_fedavg": {"n_clients": 10, "rounds": 5, "algorithm": "fedavg", "local_epochs": 2, "batch_size": 10,
                     "lr": 0.3, "scheme": "plain"},
    "dp_fedavg": {"n_clients": 100, "clients_per_round": 10, "client_sampling": "poisson", "rounds": 100,
                  "algorithm": "fedavg", "scheme": "dp"},
}


def observers_case(data: Dataset, run: str, seeds: Sequence[int], models: int) -> dict[str, Any]:
    """The server's and the public's membership figures on one federated run per seed."""
    from defenses.dp import CentralDP
    from leakage.quantify import score_transcript, split_test_data
    from leakage.simulation import SimulationSettings, Simulator

    options = OBSERVER_RUNS[run]
    attacks = [(name, {**opts, "reference_models": models} if "reference_models" in opts else opts)
               for name, opts in OBSERVER_ATTACKS]
    figures: dict[tuple[str, str], dict[str, list[Any]]] = {}
    started, members = time.perf_counter(), []
    for seed in seeds:
        train, test = split_test_data(data, 0.5, seed)
        settings = SimulationSettings(model="mlp", seed=seed, **options)
        scheme = CentralDP(clip_norm=1.0, noise_multiplier=1.0, delta=1e-5) if options["scheme"] == "dp" else None
        transcript = Simulator(settings, dataset=train, scheme=scheme).run()
        rows = score_transcript(transcript, train, observers=["server", "public"], attacks=attacks, target=0,
                                seed=seed, held_out=test)
        for row in rows:
            if row.metric != "auc" or row.status != "ok":
                continue
            cell = figures.setdefault((row.attack, row.observer), {"auc": [], "tpr@0.001": [], "tpr@0.01": []})
            for name in cell:
                cell[name].append(float(row.value if name == "auc" else row.metrics[name]))
            if row.attack == "loss_threshold" and row.observer == "server":
                members.append(int(row.metrics["members"]))
    table: dict[str, Any] = {}
    for (attack, observer), cell in sorted(figures.items()):
        table.setdefault(attack, {})[observer] = {
            "auc_mean": statistics.mean(cell["auc"]), "auc_per_seed": [round(v, 4) for v in cell["auc"]],
            "tpr@0.001_mean": statistics.mean(cell["tpr@0.001"]), "tpr@0.01_mean": statistics.mean(cell["tpr@0.01"]),
        }
    for attack, cells in table.items():
        if {"server", "public"} <= set(cells):
            server, public = figures[(attack, "server")], figures[(attack, "public")]
            cells["server_at_or_above_public_every_seed"] = all(
                server[name][i] >= public[name][i] for name in ("auc", "tpr@0.001", "tpr@0.01")
                for i in range(len(seeds)))
    best = {observer: [max(figures[(attack, observer)]["auc"][i] for attack, _ in attacks
                           if (attack, observer) in figures) for i in range(len(seeds))]
            for observer in ("server", "public")}
    table["best_attack_auc"] = {**{observer: [round(v, 4) for v in values] for observer, values in best.items()},
                                "server_at_or_above_public_every_seed": all(
                                    s >= p for s, p in zip(best["server"], best["public"], strict=True))}
    return {"setting": options, "seeds": list(seeds), "target_members_per_seed": members,
            "seconds": time.perf_counter() - started, "attacks": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="targets per case (default 5)")
    parser.add_argument("--quick", action="store_true", help="one seed, 8 reference models: a smoke run")
    parser.add_argument("--parts", default="released,observers",
                        help="comma-separated: released (the released-model cases), observers (server vs public)")
    args = parser.parse_args()
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - {"released", "observers"})
    if unknown or not parts:
        parser.error(f"--parts must name released and/or observers, got {args.parts!r}")
    torch.set_num_threads(1)
    logging.getLogger("absl").setLevel(logging.ERROR)  # dp_accounting's RDP warns for every excluded order
    seeds = range(1 if args.quick else args.seeds)
    models = 8 if args.quick else REFERENCE_MODELS
    data = load_dataset("digits")
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "dataset": "digits", "records": len(data), "model": f"mlp{list(HIDDEN)}", "epochs": EPOCHS,
        "lr": LEARNING_RATE, "batch_size": BATCH_SIZE, "torch_threads": torch.get_num_threads(),
    }
    if "released" in parts:
        report["cases"] = {name: run_case(data, case["records"], case["non_members"], seeds, models)
                           for name, case in CASES.items()}
    if "observers" in parts:
        report["observers"] = {run: observers_case(data, run, seeds, models) for run in OBSERVER_RUNS}
    report.update({"load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
                   "seconds": time.perf_counter() - started})
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
