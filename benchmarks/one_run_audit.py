"""One-run audits with canary clients (issue 17): prints one JSON object.

(a) Non-private FedSGD and FedAvg runs (digits, mlp, 100 clients, a few rounds) with at
most 400 canary clients: Steinke et al.'s bound and its GDP variant, guesses and correct
guesses, delta, and the seconds the audit took (scoring and bounds, not the simulation).
Target: a bound >= 4.0 in under 5 s.

(b) DP-FedAvg (noise multiplier 1, clip 1, Poisson client sampling 0.1, 100 rounds) over
20 seeds: each seed's largest audit bound next to the accountant's epsilon (the scheme's
RDP figure and the tighter PLD one, both at delta 1e-5). Target: every bound below it.

(c) Canary records (``leakage.quantify.canary_records``): 400 mislabelled records drawn out
of ``digits``, each put back with probability 1/2 before the partition deals the data,
scored by the loss threshold: a non-private FedAvg run (10 clients, 10 rounds of 10 local
epochs) read by the public (the released model) and by the eavesdropper (every round's
loss drop), and DP-FedAvg as in (b) over ``--record-seeds`` seeds, whose bounds must stay
below the accountant's.

Run: ``python benchmarks/one_run_audit.py [--seeds 20] [--dp-rounds 100] [--record-seeds 5]`` (one torch thread).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

import torch

from defenses.dp import CentralDP
from defenses.dp.accountant import deployment_privacy_spent
from leakage.aggregation import AggregationScheme, PlainAggregation
from leakage.quantify import CanaryAudit, CanarySpec, WithCanaries, audit_canaries
from leakage.simulation import SimulationSettings, Simulator, scheme_deployment

DELTA = 1e-5


def _audit(settings: SimulationSettings, scheme: AggregationScheme, spec: CanarySpec) -> tuple[CanaryAudit, float, float]:
    wrapped = WithCanaries(scheme, spec)
    started = time.perf_counter()
    transcript = Simulator(settings, scheme=wrapped).run()
    simulated = time.perf_counter() - started
    started = time.perf_counter()
    result = audit_canaries(transcript, wrapped.truth(), delta=DELTA)
    return result, simulated, time.perf_counter() - started


def _bounds(result: CanaryAudit) -> dict[str, Any]:
    return {
        f"{audit.method}_{audit.policy}": {
            "epsilon_lower_bound": round(audit.epsilon_lower_bound, 4),
            "delta": audit.delta,
            "m": audit.m,
            "guesses": audit.guesses,
            "correct": audit.correct,
        }
        for audit in result.audits
    }


def non_private(rounds: int, canaries: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for algorithm in ("fedsgd", "fedavg"):
        for kind in ("random", "dirac"):
            settings = SimulationSettings(n_clients=100, rounds=rounds, algorithm=algorithm, seed=0)
            spec = CanarySpec(m=canaries, kind=kind, norm=1.0, seed=0)
            print(f"non-private {algorithm} {kind}", file=sys.stderr, flush=True)
            result, simulated, audited = _audit(settings, PlainAggregation(), spec)
            estimate = result.estimate
            rows.append({
                "algorithm": algorithm,
                "kind": kind,
                "rounds": rounds,
                "canaries": canaries,
                "inserted": result.inserted,
                "bounds": _bounds(result),
                "best_steinke": round(max(a.epsilon_lower_bound for a in result.audits if a.method == "steinke"), 4),
                "best_gdp": round(max(a.epsilon_lower_bound for a in result.audits if a.method == "gdp"), 4),
                "delta": DELTA,
                "andrew_estimate": None if estimate is None else {
                    "epsilon_estimate": round(estimate.epsilon_estimate, 4), "delta": estimate.delta,
                    "kind": "estimate, not a bound"},
                "andrew_note": result.estimate_note,
                "audit_seconds": round(audited, 3),
                "simulation_seconds": round(simulated, 3),
                "meets_target": max(a.epsilon_lower_bound for a in result.audits if a.method == "steinke") >= 4.0
                and audited < 5.0,
            })
    return rows


def dp_fedavg(seeds: int, rounds: int, canaries: int) -> dict[str, Any]:
    per_seed: list[dict[str, Any]] = []
    pld_epsilon: float | None = None
    for seed in range(seeds):
        settings = SimulationSettings(
            n_clients=100, clients_per_round=10, client_sampling="poisson", rounds=rounds, algorithm="fedavg",
            scheme="dp", seed=seed,
        )
        if pld_epsilon is None:
            deployment = scheme_deployment(settings, [1] * 100, 1, 10)
            pld_epsilon = deployment_privacy_spent(
                deployment, noise_multiplier=1.0, steps=rounds, delta=DELTA, method="pld").epsilon
        started = time.perf_counter()
        result, _, audited = _audit(
            settings, CentralDP(clip_norm=1.0, noise_multiplier=1.0, delta=DELTA), CanarySpec(m=canaries, seed=seed)
        )
        best = max(result.audits, key=lambda audit: audit.epsilon_lower_bound)
        steinke = max(a.epsilon_lower_bound for a in result.audits if a.method == "steinke")
        row: dict[str, Any] = {
            "seed": seed,
            "inserted": result.inserted,
            "best_steinke": round(steinke, 4),
            "best_gdp": round(max(a.epsilon_lower_bound for a in result.audits if a.method == "gdp"), 4),
            "best": f"{best.method}/{best.policy}: {best.correct} of {best.guesses}",
            "delta": DELTA,
            "andrew_estimate": None if result.estimate is None else round(result.estimate.epsilon_estimate, 4),
            "accountant_epsilon_rdp": result.accountant_epsilon,
            "accountant_delta": result.accountant_delta,
            "audit_seconds": round(audited, 3),
        }
        per_seed.append(row)
        print(f"dp seed {seed}: bound {best.epsilon_lower_bound:.3f} ({row['best']}), accountant "
              f"{result.accountant_epsilon:.3f}, {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    assert pld_epsilon is not None
    highest = max(max(row["best_steinke"], row["best_gdp"]) for row in per_seed)
    return {
        "setting": {"noise_multiplier": 1.0, "clip_norm": 1.0, "sampling": "poisson 10 of 100", "rounds": rounds,
                    "canaries": canaries, "canary_norm": "clip norm", "delta": DELTA},
        "accountant_epsilon_pld": round(pld_epsilon, 4),
        "accountant_epsilon_rdp": per_seed[0]["accountant_epsilon_rdp"],
        "seeds": per_seed,
        "seeds_below_pld_accountant": sum(max(r["best_steinke"], r["best_gdp"]) < pld_epsilon for r in per_seed),
        "seeds_below_rdp_accountant": sum(
            max(r["best_steinke"], r["best_gdp"]) < r["accountant_epsilon_rdp"] for r in per_seed),
        "highest_bound": highest,
        "andrew_estimates_above_pld_accountant": sum(
            r["andrew_estimate"] is not None and r["andrew_estimate"] > pld_epsilon for r in per_seed),
    }


def canary_records(seeds: int, dp_rounds: int, canaries: int) -> dict[str, Any]:
    from leakage.data import load_dataset
    from leakage.quantify import CanaryRecordSpec, RecordAudit, audit_with_canary_records

    digits = load_dataset("digits")
    spec = CanaryRecordSpec(m=canaries, seed=0)

    def row(audit: RecordAudit, seconds: float) -> dict[str, Any]:
        best = max(audit.audits, key=lambda a: a.epsilon_lower_bound)
        return {"observer": audit.observer, "inserted": audit.inserted,
                "best_steinke": round(max(a.epsilon_lower_bound for a in audit.audits if a.method == "steinke"), 4),
                "best_gdp": round(max(a.epsilon_lower_bound for a in audit.audits if a.method == "gdp"), 4),
                "best": f"{best.method}/{best.policy}: {best.correct} of {best.guesses}", "delta": best.delta,
                "accountant_epsilon_rdp": audit.accountant_epsilon, "seconds": round(seconds, 2)}

    non_private = []
    settings = SimulationSettings(n_clients=10, rounds=10, algorithm="fedavg", local_epochs=10, batch_size=16,
                                  lr=0.3, seed=0)
    for observer, options in (("public", {}), ("eavesdropper", {"rounds": "max", "calibration": "auto"})):
        started = time.perf_counter()
        audit = audit_with_canary_records(settings, spec, dataset=digits, observer=observer, attack_options=options)
        non_private.append(row(audit, time.perf_counter() - started))
    private = []
    for seed in range(seeds):
        settings = SimulationSettings(n_clients=100, clients_per_round=10, client_sampling="poisson",
                                      rounds=dp_rounds, algorithm="fedavg", scheme="dp", seed=seed)
        started = time.perf_counter()
        audit = audit_with_canary_records(
            settings, CanaryRecordSpec(m=canaries, seed=seed), dataset=digits, observer="eavesdropper",
            scheme=CentralDP(clip_norm=1.0, noise_multiplier=1.0, delta=DELTA),
            attack_options={"rounds": "max", "calibration": "auto"}, delta=DELTA,
        )
        private.append({"seed": seed, **row(audit, time.perf_counter() - started)})
    return {
        "setting": {"canaries": canaries, "mislabelled": True, "attack": "loss_threshold", "delta": DELTA},
        "non_private_fedavg": non_private,
        "dp_fedavg": private,
        "dp_seeds_below_rdp_accountant": sum(
            max(r["best_steinke"], r["best_gdp"]) < r["accountant_epsilon_rdp"] for r in private),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--dp-rounds", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--canaries", type=int, default=400)
    parser.add_argument("--record-seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("absl").setLevel(logging.ERROR)  # dp_accounting's RDP warns for every excluded order
    started = time.perf_counter()
    report = {
        "non_private": non_private(args.rounds, args.canaries),
        "dp_fedavg": dp_fedavg(args.seeds, args.dp_rounds, args.canaries),
        "canary_records": canary_records(args.record_seeds, args.dp_rounds, args.canaries),
        "torch_threads": torch.get_num_threads(),
    }
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
