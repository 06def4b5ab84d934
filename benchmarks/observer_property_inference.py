"""Passive property inference (Melis et al., IEEE S&P 2019) on Adult: AUC as clients grow.

Prints one JSON object. Each trial simulates two rounds of FedSGD on UCI Adult
(``logreg``, batches of 32, learning rate 0.1) with the ``target`` partition: client 0, the
target, holds 32 people who are all women (``target_has_property=True``) or all men;
every other client holds 64 people, either none of them women (the paper's population,
``others="without_property"``) or drawn regardless of sex (a realistic one,
``others="any"``). ``sex`` is not an input of the model. The attacker's auxiliary data
is Adult's test file, disjoint from the clients' training rows.

Observers:

- ``client:1``, a participant: it sees the round difference, the mean update of the
  other ``N - 1`` clients, and assumes the others' population of the setting;
- ``server`` under ``plain``: it reads the target's own upload (realistic population,
  the smallest and largest ``N``), the reference point of no aggregation at all.

For each setting, ``auc`` is the ROC AUC of the attack's scores over 200 trials (half
with the property), and ``tpr_at_1pct_fpr`` the best true-positive rate at a
false-positive rate of at most 1%, i.e. at most one false positive among the 100
``negatives`` (with ``--quick``'s 5 negatives it is the TPR at zero false positives).
The attack uses both observed rounds, 64 simulated examples per class and round, a
logistic-regression classifier and the mean of the two round scores.

``vectorisation`` times the attacker's shadow training for one round of the largest
setting (vmapped over clients) against a per-client loop on the same samples.

Usage: python benchmarks/observer_property_inference.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from attacks import (
    Knowledge,
    OthersPopulation,
    PropertyInferenceAttack,
    shadow_updates,
)
from leakage import Dataset, create_model, simulate
from leakage.data.adult import load_adult
from leakage.models import ParameterLayout
from leakage.seeding import Stream, torch_generator
from leakage.simulation import make_loss, train_client

CLIENT_COUNTS = (2, 4, 8, 16, 30)
POPULATIONS: tuple[OthersPopulation, ...] = ("without_property", "any")
PROPERTY = "female"
BATCH_SIZE = 32
SAMPLES_PER_CLIENT = 64
LEARNING_RATE = 0.1
MAX_FPR = 0.01


def summarise(scores: Sequence[float], truths: Sequence[bool], *, max_fpr: float = MAX_FPR) -> dict[str, float]:
    """Return the ROC AUC of ``scores`` against ``truths`` and the best TPR at FPR <= ``max_fpr``."""
    false_positive, true_positive, _ = roc_curve(truths, scores)
    return {
        "auc": float(roc_auc_score(truths, scores)),
        "tpr_at_1pct_fpr": float(true_positive[false_positive <= max_fpr].max()),
    }


def run_trial(
    clients: Dataset,
    knowledge: Knowledge,
    attack: PropertyInferenceAttack,
    *,
    observer: str,
    n_clients: int,
    others: OthersPopulation,
    has_property: bool,
    rounds: int,
    seed: int,
) -> float:
    """Simulate one deployment and return the attack's score for the target, client 0."""
    transcript = simulate(
        dataset=clients,
        model="logreg",
        n_clients=n_clients,
        rounds=rounds,
        algorithm="fedsgd",
        batch_size=BATCH_SIZE,
        lr=LEARNING_RATE,
        partition="target",
        partition_options={
            "property": PROPERTY,
            "target_size": BATCH_SIZE,
            "target_has_property": has_property,
            "others": others,
            "samples_per_client": SAMPLES_PER_CLIENT,
        },
        seed=seed,
    )
    result = attack.run(transcript.views_of(observer), knowledge, generator=torch_generator(seed, Stream.ATTACK))
    return result.score


def _setting(
    clients: Dataset,
    knowledge: Knowledge,
    *,
    observer: str,
    n_clients: int,
    others: OthersPopulation,
    trials: int,
    rounds: int,
    batches_per_class: int,
) -> dict[str, object]:
    attack = PropertyInferenceAttack(
        property=PROPERTY,
        client=0 if observer == "server" else None,
        batches_per_class=batches_per_class,
        others=others,
    )
    scores: list[float] = []
    truths: list[bool] = []
    started = time.perf_counter()
    for trial in range(trials):
        has_property = trial % 2 == 0
        seed = 1000 * n_clients + trial
        scores.append(
            run_trial(
                clients, knowledge, attack, observer=observer, n_clients=n_clients, others=others,
                has_property=has_property, rounds=rounds, seed=seed,
            )
        )
        truths.append(has_property)
    seconds = time.perf_counter() - started
    with_scores = [score for score, truth in zip(scores, truths) if truth]
    without_scores = [score for score, truth in zip(scores, truths) if not truth]
    return {
        "observer": observer,
        "population": others,
        "n_clients": n_clients,
        "clients_in_observation": n_clients - 1 if observer.startswith("client:") else 1,
        **summarise(scores, truths),
        "trials": trials,
        "negatives": len(without_scores),
        "mean_score_with_property": float(np.mean(with_scores)),
        "mean_score_without_property": float(np.mean(without_scores)),
        "seconds_per_trial": seconds / trials,
    }


def _vectorisation(auxiliary: Dataset, model: torch.nn.Module, *, clients_mixed: int, examples: int) -> dict[str, float]:
    """Time one round of shadow training, vmapped, against a loop over the same simulated clients."""
    layout = ParameterLayout.of(model)
    params = torch.zeros(layout.num_parameters)
    flags = auxiliary.properties[PROPERTY]
    with_property = torch.nonzero(flags).reshape(-1)
    everyone = torch.arange(len(auxiliary))
    started = time.perf_counter()
    shadow = shadow_updates(
        model, params, auxiliary, with_property, everyone, examples=examples, clients_mixed=clients_mixed,
        samples_per_client=BATCH_SIZE, lr=LEARNING_RATE, generator=torch.Generator().manual_seed(0),
    )
    vectorised = time.perf_counter() - started
    loss = make_loss(model)
    started = time.perf_counter()
    looped = torch.stack(
        [
            torch.stack(
                [
                    train_client(loss, layout, params, [(auxiliary.inputs[rows], auxiliary.targets[rows])],
                                 lr=LEARNING_RATE)[0]
                    for rows in members
                ]
            ).mean(dim=0)
            for members in shadow.samples
        ]
    )
    loop = time.perf_counter() - started
    return {
        "simulated_clients": float(examples * clients_mixed),
        "vectorised_seconds": vectorised,
        "loop_seconds": loop,
        "speedup": loop / vectorised,
        "max_abs_difference": float((looped - shadow.updates).abs().max()),
    }


def measure(quick: bool = False) -> dict[str, object]:
    """Run every setting and return the JSON-ready figures."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    trials = 10 if quick else 200
    rounds = 2
    batches_per_class = 32 if quick else 64
    counts = (2, 8) if quick else CLIENT_COUNTS
    clients = load_adult(split="train", n_samples=8000, seed=0)
    auxiliary = load_adult(split="test")
    model = create_model("logreg", input_shape=clients.input_shape, num_classes=2, generator=torch.Generator())
    knowledge = Knowledge.from_dataset(auxiliary, model, auxiliary=auxiliary)
    settings: list[tuple[str, OthersPopulation, int]] = [
        ("client:1", others, n_clients) for others in POPULATIONS for n_clients in counts
    ]
    # The server reads one upload whatever N is: its two ends are reference enough.
    settings += [("server", "any", n_clients) for n_clients in sorted({min(counts), max(counts)})]
    results = [
        _setting(
            clients, knowledge, observer=observer, n_clients=n_clients, others=others, trials=trials,
            rounds=rounds, batches_per_class=batches_per_class,
        )
        for observer, others, n_clients in settings
    ]
    return {
        "benchmark": "property_inference",
        "paper": "Melis, Song, De Cristofaro, Shmatikov, IEEE S&P 2019 (passive property inference)",
        "dataset": "adult (clients: 8000 training rows; auxiliary: the 15060 test rows)",
        "property": PROPERTY,
        "model": "logreg",
        "algorithm": "fedsgd",
        "batch_size": BATCH_SIZE,
        "samples_per_other_client": SAMPLES_PER_CLIENT,
        "lr": LEARNING_RATE,
        "rounds": rounds,
        "batches_per_class": batches_per_class,
        "classifier": "logistic",
        "combine": "mean",
        "quick": quick,
        "results": results,
        "vectorisation": _vectorisation(
            auxiliary, model, clients_mixed=max(counts) - 1, examples=8 if quick else batches_per_class
        ),
        "torch_threads": torch.get_num_threads(),
        "seconds": time.perf_counter() - started,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few trials and client counts, for a smoke test")
    arguments = parser.parse_args()
    print(json.dumps(measure(quick=arguments.quick), indent=2))
