"""How well a secure aggregation server disaggregates single updates, against rounds and drift.

Prints one JSON object. The deployment: ``N = 10`` clients of ``digits`` split by a
Dirichlet(0.5) label partition (so clients' updates differ), 5 sampled per round, FedSGD
on each client's whole local data (``batch_size=None``: the update moves only with the
model), an ``mlp``, and the real ``secagg`` protocol; the attack runs on the server's
views (decoded aggregate, participants, summed weight), so the sample counts are solved
from the summed weights, not assumed.

Each recovered update is scored by its cosine to the client's true mean update over the
rounds of its window it took part in (``truth.rounds[r].update_of(c)``). ``naive_*`` is
the cosine of the server's guess without disaggregation, the mean aggregate of those
rounds, to the same truth. Rows pool all clients and seeds: ``median_cosine``,
``min_cosine``, ``identifiable_clients`` per seed, the design's ``rank`` (min),
``condition_number`` (max) and ``relative_residual`` ``||M U_hat - S|| / ||S||`` (median),
and ``errors`` (the attack's refusal, per seed, where it recovered nobody).

- ``rounds``: learning rate 0.01, one window of the first R rounds, R in 5..80.
- ``failures``: fewer rounds than clients, and every client in every round.
- ``drift``: faster-changing updates: learning rate up to 2 (40 rounds, one window),
  FedSGD on random batches of 16 (the update changes every round whatever the learning
  rate), and at learning rate 0.1 over 80 rounds, shorter windows and a linear drift model.

Shorter runs are prefixes of one 80-round simulation per setting and seed (a round depends
only on the seed and the rounds before it). One torch thread.

Usage: python benchmarks/observer_disaggregation.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from attacks.disaggregation import DisaggregationAttack, DriftModel
from leakage import simulate
from leakage.errors import ThreatModelError
from leakage.transcript import Transcript

N_CLIENTS = 10
PER_ROUND = 5
LONGEST = 80
SETTING: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "scheme": "secagg",
    "observer": "server",
    "n_clients": N_CLIENTS,
    "clients_per_round": PER_ROUND,
    "algorithm": "fedsgd",
    "batch_size": None,
    "partition": "dirichlet",
    "partition_options": {"alpha": 0.5},
}


def _simulate(seed: int, *, lr: float, rounds: int = LONGEST, **overrides: Any) -> Transcript:
    settings = {**SETTING, "lr": lr, "rounds": rounds, "seed": seed, **overrides}
    settings.pop("observer")
    return simulate(**settings)


def _score(
    transcripts: Sequence[Transcript],
    rounds: int,
    *,
    window: int | None = None,
    drift: DriftModel = "constant",
) -> dict[str, Any]:
    """Run the attack on the first ``rounds`` server views of each transcript and pool the scores."""
    attack = DisaggregationAttack(window=window, drift=drift)
    found: list[float] = []
    naive: list[float] = []
    identifiable: list[int] = []
    ranks: list[float] = []
    conditions: list[float] = []
    residuals: list[float] = []
    seconds: list[float] = []
    errors: list[str] = []
    for transcript in transcripts:
        views = transcript.views_of("server")[:rounds]
        try:
            estimate = attack.run(views)
        except ThreatModelError as error:
            identifiable.append(0)
            errors.append(str(error))
            continue
        by_round = {view.round_index: view for view in views}
        for item in estimate.recovered:
            client = next(iter(item.clients or ()))
            truth = torch.stack([transcript.truth.rounds[r].update_of(client) for r in item.rounds]).double().mean(0)
            decoded = [by_round[r].received["aggregate"] for r in item.rounds]
            guess = torch.stack([value for value in decoded if isinstance(value, torch.Tensor)]).double().mean(0)
            found.append(float(F.cosine_similarity(item.update, truth, dim=0)))
            naive.append(float(F.cosine_similarity(guess, truth, dim=0)))
        identifiable.append(int(estimate.details["identifiable_clients"]))
        ranks.append(estimate.details["rank"])
        conditions.append(estimate.details["condition_number"])
        residuals.append(estimate.details["relative_residual"])
        seconds.append(estimate.seconds)
    return {
        "rounds": rounds,
        "window": window,
        "drift": drift,
        "identifiable_clients": identifiable,
        "median_cosine": _round(statistics.median(found)) if found else None,
        "min_cosine": _round(min(found)) if found else None,
        "naive_median_cosine": _round(statistics.median(naive)) if naive else None,
        "rank": int(min(ranks)) if ranks else None,
        "condition_number": _round(max(conditions)) if conditions else None,
        "relative_residual": _round(statistics.median(residuals)) if residuals else None,
        "attack_seconds": _round(statistics.mean(seconds)) if seconds else None,
        "errors": errors,
    }


def _round(value: float) -> float:
    return round(value, 4)


def measure(quick: bool = False) -> dict[str, Any]:
    """Return the disaggregation figures (see the module docstring); ``quick`` runs one seed and fewer rows."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    seeds = (0,) if quick else (0, 1, 2)
    sweep = (10, 40) if quick else (5, 10, 20, 40, 80)
    rates = (0.01, 1.0) if quick else (0.01, 0.1, 0.5, 2.0)
    by_rate = {lr: [_simulate(seed, lr=lr) for seed in seeds] for lr in sorted({*rates, 0.1})}

    rounds_rows = [{"lr": 0.01, **_score(by_rate[0.01], rounds)} for rounds in sweep]

    everyone = [_simulate(seed, lr=0.01, rounds=20, clients_per_round=None) for seed in seeds]
    failures = [
        {"case": "fewer rounds than clients", "lr": 0.01, **_score(by_rate[0.01], N_CLIENTS - 1)},
        {"case": "every client in every round", "lr": 0.01, "clients_per_round": N_CLIENTS, **_score(everyone, 20)},
    ]

    minibatch = [_simulate(seed, lr=0.01, batch_size=16) for seed in seeds]
    drift_rows = [{"case": "learning rate", "lr": lr, **_score(by_rate[lr], 40)} for lr in rates]
    drift_rows.append({"case": "random batches of 16", "lr": 0.01, "batch_size": 16, **_score(minibatch, 40)})
    windows: list[tuple[int | None, DriftModel]] = [(None, "constant"), (20, "constant"), (None, "linear")]
    if not quick:
        windows[2:2] = [(10, "constant"), (40, "linear")]
    for window, drift in windows:
        drift_rows.append(
            {"case": "windows at lr 0.1", "lr": 0.1, **_score(by_rate[0.1], LONGEST, window=window, drift=drift)}
        )
    return {
        "setting": {**SETTING, "seeds": list(seeds), "torch_threads": 1},
        "rounds": rounds_rows,
        "failures": failures,
        "drift": drift_rows,
        "seconds": _round(time.perf_counter() - started),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed and fewer rows")
    print(json.dumps(measure(quick=parser.parse_args().quick), indent=2))
