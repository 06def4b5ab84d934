"""How much a participant learns by subtracting its own update from the model's change.

Prints one JSON object (``measure()``):

- ``two_clients``: per scheme (``plain``, ``secagg``, ``he``), the relative error of the
  peer update a participant recovers (median and max over rounds and seeds), and the PSNR
  of the peer's image that iDLG reconstructs from it (``lenet`` with sigmoids on one
  32x32 ``sample_patches`` image per client, FedSGD, as in the DLG paper), next to the
  PSNR of iDLG on the true update: the subtraction hands the attack the same input.
- ``collusion``: N=10 under ``secagg``, 9 colluders, relative error for the honest client.
- ``single_attacker``: one participant among N in {2, 5, 10, 50, 100} under ``secagg``
  (FedSGD on ``digits``, batch 8): cosine of its estimate (the mean of the others) to
  each other client's update, and the same cosine for the mean of the others *without*
  that client (what the population alone gives): the gap is what the target's presence
  adds, and it shrinks like 1/N.
- ``dp``: two clients under central DP (clip norm 0.1, below the updates' norm of about
  0.17, so every update is clipped): relative error and cosine of the recovered peer
  update against its clipped update, for several noise multipliers. The noise's norm is
  about ``noise_multiplier * clip_norm * sqrt(P)`` (P = 9,610), so the error grows like
  ``98 * noise_multiplier``.

Usage: python benchmarks/observer_round_difference.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from typing import Any

import torch

from attacks import Knowledge, Observation, RoundDifferenceAttack, create_attack
from leakage import Dataset, load_dataset, simulate
from leakage.metrics import psnr, relative_error, update_cosine
from leakage.views import client_observer


def _raw_patches() -> Dataset:
    patches = load_dataset("sample_patches")
    channels = patches.input_shape[0]
    return replace(
        patches, inputs=patches.denormalize(patches.inputs), mean=torch.zeros(channels, 1, 1), std=torch.ones(channels, 1, 1)
    )


def _idlg_psnr(observation: Observation, knowledge: Knowledge, original: torch.Tensor, seed: int) -> float:
    result = create_attack("idlg").run(observation, knowledge, generator=torch.Generator().manual_seed(seed))
    return min(float(psnr(result.raw_inputs.clamp(0, 1), original, data_range=1.0)[0]), 300.0)


def two_clients(schemes: list[str], seeds: int) -> dict[str, Any]:
    """Subtraction error and the peer reconstruction it enables, per scheme."""
    patches = _raw_patches()
    results: dict[str, Any] = {}
    direct: dict[int, float] = {}
    for scheme in schemes:
        errors: list[float] = []
        recovered_db: list[float] = []
        direct_db: list[float] = []
        seconds: list[float] = []
        for seed in range(seeds):
            transcript = simulate(
                dataset=patches, model="lenet", n_clients=2, rounds=1, algorithm="fedsgd", batch_size=1, lr=0.1,
                scheme=scheme, seed=seed, partition_options={"samples_per_client": 4},
            )
            started = time.perf_counter()
            estimate = RoundDifferenceAttack().run(transcript.views_of("client:0"))
            seconds.append(time.perf_counter() - started)
            truth = transcript.truth.rounds[0]
            observation = estimate.observation(1)
            errors.append(relative_error(observation.value, truth.update_of(1)))
            original = patches.inputs[truth.sample_order[1]]
            knowledge = Knowledge.from_dataset(patches, transcript.build_model(observation.params), lr=0.1)
            recovered_db.append(_idlg_psnr(observation, knowledge, original, seed))
            if seed not in direct:  # round 0 starts from the same model under every scheme
                direct[seed] = _idlg_psnr(replace(observation, value=truth.update_of(1).double()), knowledge, original, seed)
            direct_db.append(direct[seed])
        results[scheme] = {
            "relative_error_median": statistics.median(errors),
            "relative_error_max": max(errors),
            "peer_psnr_from_subtraction": statistics.median(recovered_db),
            "peer_psnr_from_true_update": statistics.median(direct_db),
            "subtraction_seconds": statistics.median(seconds),
            "seeds": seeds,
        }
    return results


def collusion(n_clients: int = 10, rounds: int = 3) -> dict[str, Any]:
    """Relative error of the honest client's update recovered by N-1 colluders under secagg."""
    digits = load_dataset("digits")
    transcript = simulate(
        dataset=digits, model="mlp", n_clients=n_clients, rounds=rounds, algorithm="fedsgd", batch_size=8, scheme="secagg"
    )
    views = [view for c in range(1, n_clients) for view in transcript.views_of(client_observer(c))]
    estimate = RoundDifferenceAttack().run(views)
    errors = [relative_error(item.update, transcript.truth.rounds[item.round_index].update_of(0)) for item in estimate.recovered]
    return {"n_clients": n_clients, "colluders": n_clients - 1, "scheme": "secagg", "relative_error_max": max(errors)}


def single_attacker(sizes: list[int], rounds: int) -> list[dict[str, Any]]:
    """Cosine of a lone attacker's estimate to each other client's update, against the population baseline."""
    digits = load_dataset("digits")
    rows = []
    for n_clients in sizes:
        transcript = simulate(
            dataset=digits, model="mlp", n_clients=n_clients, rounds=rounds, algorithm="fedsgd", batch_size=8,
            scheme="secagg",
        )
        estimate = RoundDifferenceAttack().run(transcript.views_of("client:0"))
        with_target: list[float] = []
        without_target: list[float] = []
        for item in estimate.recovered:
            truth = transcript.truth.rounds[item.round_index]
            others = list(range(1, n_clients))
            for target in others:
                with_target.append(update_cosine(item.update, truth.update_of(target)))
                rest = [c for c in others if c != target]
                if rest:
                    baseline = truth.updates[[truth.client_ids.index(c) for c in rest]].double().mean(dim=0)
                    without_target.append(update_cosine(baseline, truth.update_of(target)))
        row: dict[str, Any] = {
            "n_clients": n_clients,
            "cosine_to_target": statistics.median(with_target),
            "individual": all(item.is_individual for item in estimate.recovered),
        }
        if without_target:
            row["cosine_without_target"] = statistics.median(without_target)
            row["cosine_gain_from_target"] = row["cosine_to_target"] - row["cosine_without_target"]
        rows.append(row)
    return rows


def under_dp(noise_multipliers: list[float], rounds: int = 3, clip_norm: float = 0.1) -> list[dict[str, Any]]:
    """Error of the recovered peer update under central DP, against the peer's clipped update."""
    digits = load_dataset("digits")
    rows = []
    for noise_multiplier in noise_multipliers:
        transcript = simulate(
            dataset=digits, model="mlp", n_clients=2, rounds=rounds, algorithm="fedsgd", batch_size=8, scheme="dp",
            scheme_options={"clip_norm": clip_norm, "noise_multiplier": noise_multiplier},
        )
        estimate = RoundDifferenceAttack().run(transcript.views_of("client:0"))
        errors, cosines = [], []
        for item in estimate.recovered:
            update = transcript.truth.rounds[item.round_index].update_of(1).double()
            clipped = update * min(1.0, clip_norm / float(update.norm()))
            errors.append(relative_error(item.update, clipped))
            cosines.append(update_cosine(item.update, clipped))
        rows.append({
            "noise_multiplier": noise_multiplier,
            "epsilon": transcript.rounds[-1].public["epsilon"],
            "relative_error": statistics.median(errors),
            "cosine": statistics.median(cosines),
        })
    return rows


def measure(quick: bool = False) -> dict[str, Any]:
    """Run every round-difference case and return the figures."""
    torch.set_num_threads(1)
    return {
        "two_clients": two_clients(["plain", "secagg", "he"], seeds=1 if quick else 3),
        "collusion": collusion(),
        "single_attacker": single_attacker([2, 5, 10] if quick else [2, 5, 10, 50, 100], rounds=2 if quick else 3),
        "dp": under_dp([0.001, 0.01, 0.1, 1.0]),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and sizes")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))
