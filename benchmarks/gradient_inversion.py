"""Quality and speed of the gradient inversion attacks, over seeds, with honest metrics.

Prints one JSON object ``{"results": [...], "restarts_speedup": {...}}``. Each result is
one case run over several seeds (a seed draws the model's weights, the target sample(s)
and the attack's initialisation) and reports:

- ``success_rate``: share of seeds whose reconstruction reaches PSNR >= 30 dB (these
  attacks are bimodal: exact or noise, so a mean PSNR alone misleads);
- ``psnr``, ``ssim``: medians over seeds (after Hungarian matching for batches, on
  denormalised inputs in their real range); ``label_accuracy``: mean over seeds;
- ``seconds``: median wall seconds per reconstruction; ``objective_evals_per_s``: median
  objective evaluations (for batched restarts: candidate evaluations) per second.

Cases: DLG and iDLG on the sigmoid ``lenet`` with one 32x32 ``sample_patches`` image,
fed in [0, 1] without normalisation as in the DLG paper; Inverting Gradients on
``convnet`` with batch 1 and batch 4; a FedAvg update of 5 local steps (one image, 5
epochs) attacked by unrolling; the analytic inversion of ``mlp``'s first layer on
``digits`` (batch 1 and 4). ``restarts_speedup`` times 8 restarts of the same Inverting
Gradients loop run batched (``vmap``) against a plain loop over restarts (no ``vmap``),
for ``convnet`` of width 32 (the default) and 16. ``pruning`` runs DLG against gradients
pruned to their largest ``keep`` fraction (top-k, the DLG paper's defense) on a small
sigmoid ``mlp`` where DLG is exact without pruning. Everything runs with one torch thread.

Usage: python benchmarks/gradient_inversion.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from typing import Any

import torch

from attacks import Knowledge, Observation, create_attack
from leakage import Dataset, create_model, load_dataset, simulate
from leakage.metrics import score_reconstruction


def _raw(dataset: Dataset) -> Dataset:
    """The dataset with inputs in [0, 1] and no normalisation (the DLG paper's setting)."""
    channels = dataset.input_shape[0]
    return replace(
        dataset, inputs=dataset.denormalize(dataset.inputs), mean=torch.zeros(channels, 1, 1), std=torch.ones(channels, 1, 1)
    )


def _gradient_observation(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> Observation:
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    return Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters())))


def run_case(
    attack: str,
    options: dict[str, Any],
    *,
    dataset: Dataset,
    model_name: str,
    model_options: dict[str, Any],
    batch_size: int,
    local_steps: int,
    seeds: int,
) -> dict[str, Any]:
    """Run one attack case over ``seeds`` and return its figures."""
    scores = []
    seconds = []
    rates = []
    for seed in range(seeds):
        indices = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(1000 + seed))[:batch_size]
        if local_steps == 1:
            model = create_model(
                model_name, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                generator=torch.Generator().manual_seed(seed), **model_options,
            )
            observation = _gradient_observation(model, dataset.inputs[indices], dataset.targets[indices])
            knowledge = Knowledge.from_dataset(dataset, model, num_samples=batch_size)
        else:  # the client's FedAvg update, as the server receives it in a simulation
            subset = dataset.subset(indices)
            transcript = simulate(
                dataset=subset, model=model_name, model_options=model_options, n_clients=1, rounds=1,
                algorithm="fedavg", local_epochs=local_steps, batch_size=batch_size, lr=0.01, seed=seed,
            )
            record = transcript.rounds[0]
            observation = Observation.from_view(record.views["server"], 0)
            knowledge = Knowledge.from_dataset(
                dataset, transcript.build_model(record.params_before), num_samples=batch_size, algorithm="fedavg",
                lr=0.01, local_epochs=local_steps, batch_size=batch_size,
            )
        started = time.perf_counter()
        result = create_attack(attack, **options).run(observation, knowledge, generator=torch.Generator().manual_seed(seed))
        elapsed = time.perf_counter() - started
        score = score_reconstruction(
            result.raw_inputs.clamp(*dataset.value_range),
            dataset.denormalize(dataset.inputs[indices]),
            reconstructed_labels=result.labels,
            true_labels=dataset.targets[indices],
            data_range=dataset.value_range[1] - dataset.value_range[0],
            kind=dataset.kind,
        )
        scores.append(score)
        seconds.append(elapsed)
        rates.append(result.objective_evals / elapsed if elapsed else 0.0)
    psnrs = [min(s.psnr, 300.0) for s in scores]  # an exact recovery has infinite PSNR
    return {
        "attack": attack,
        "model": model_name,
        "dataset": dataset.name,
        "batch_size": batch_size,
        "local_steps": local_steps,
        "seeds": seeds,
        "success_rate": sum(p >= 30.0 for p in psnrs) / seeds,
        "psnr": statistics.median(psnrs),
        "ssim": statistics.median(s.ssim for s in scores if s.ssim is not None) if dataset.kind == "image" else None,
        "label_accuracy": statistics.mean(s.label_accuracy for s in scores),
        "seconds": statistics.median(seconds),
        "objective_evals_per_s": statistics.median(rates),
        "options": options,
    }


def pruning_degradation(digits: Dataset, seeds: int = 5) -> list[dict[str, Any]]:
    """DLG against gradients pruned to their largest ``keep`` fraction (the DLG paper's defense).

    The victim is a small sigmoid ``mlp`` on one ``digits`` sample, where DLG is exact on
    the clean gradient, so every lost decibel is the pruning's doing.
    """
    from defenses.compression import topk_sparsify

    rows = []
    for keep in (1.0, 0.5, 0.2, 0.1, 0.05, 0.01):
        psnrs = []
        for seed in range(seeds):
            model = create_model(
                "mlp", input_shape=digits.input_shape, num_classes=10, generator=torch.Generator().manual_seed(seed),
                hidden=(32,), activation="sigmoid",
            )
            index = torch.tensor([seed * 37])
            clean = _gradient_observation(model, digits.inputs[index], digits.targets[index])
            pruned = Observation(clean.params, topk_sparsify(clean.value[None], keep)[0], "gradient")
            result = create_attack("dlg").run(pruned, Knowledge.from_dataset(digits, model), generator=torch.Generator().manual_seed(seed))
            score = score_reconstruction(
                result.raw_inputs.clamp(0, 1), digits.denormalize(digits.inputs[index]), reconstructed_labels=result.labels,
                true_labels=digits.targets[index], data_range=1.0, kind="image",
            )
            psnrs.append(min(score.psnr, 300.0))
        rows.append({"keep": keep, "psnr": statistics.median(psnrs), "success_rate": sum(p >= 30 for p in psnrs) / seeds})
    return rows


def restarts_speedup(patches: Dataset, restarts: int = 8, iterations: int = 100, width: int = 32) -> dict[str, Any]:
    """Time the same Inverting Gradients loop with batched and one-at-a-time restarts."""
    model = create_model(
        "convnet", input_shape=patches.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0), width=width
    )
    observation = _gradient_observation(model, patches.inputs[:1], patches.targets[:1])
    knowledge = Knowledge.from_dataset(patches, model)
    timings = {}
    for batched in (True, False):
        attack = create_attack("inverting_gradients", iterations=iterations, restarts=restarts, batched=batched)
        started = time.perf_counter()
        attack.run(observation, knowledge)
        timings[batched] = time.perf_counter() - started
    return {
        "model": "convnet",
        "width": width,
        "restarts": restarts,
        "iterations": iterations,
        "batched_s": timings[True],
        "one_at_a_time_s": timings[False],
        "speedup": timings[False] / timings[True],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and iterations (a smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    quick = args.quick
    patches = load_dataset("sample_patches")
    digits = load_dataset("digits")
    dlg_seeds = 2 if quick else 10
    ig_iterations = 100 if quick else 1000
    cases: list[dict[str, Any]] = [
        {"attack": "dlg", "options": {}, "dataset": _raw(patches), "model_name": "lenet", "model_options": {}, "batch_size": 1, "local_steps": 1, "seeds": dlg_seeds},
        {"attack": "idlg", "options": {}, "dataset": _raw(patches), "model_name": "lenet", "model_options": {}, "batch_size": 1, "local_steps": 1, "seeds": dlg_seeds},
        {"attack": "inverting_gradients", "options": {"iterations": ig_iterations}, "dataset": patches, "model_name": "convnet", "model_options": {}, "batch_size": 1, "local_steps": 1, "seeds": 2 if quick else 5},
        {"attack": "inverting_gradients", "options": {"iterations": ig_iterations}, "dataset": patches, "model_name": "convnet", "model_options": {}, "batch_size": 4, "local_steps": 1, "seeds": 1 if quick else 3},
        {"attack": "inverting_gradients", "options": {"iterations": ig_iterations}, "dataset": patches, "model_name": "convnet", "model_options": {}, "batch_size": 1, "local_steps": 5, "seeds": 1 if quick else 3},
        {"attack": "analytic", "options": {}, "dataset": digits, "model_name": "mlp", "model_options": {}, "batch_size": 1, "local_steps": 1, "seeds": 10},
        {"attack": "analytic", "options": {}, "dataset": digits, "model_name": "mlp", "model_options": {"hidden": (512,)}, "batch_size": 4, "local_steps": 1, "seeds": 10},
    ]
    results = [run_case(**case) for case in cases]
    speedups = [restarts_speedup(patches, iterations=20 if quick else 100, width=width) for width in (32, 16)]
    pruning = pruning_degradation(digits, seeds=2 if quick else 5)
    print(json.dumps({"results": results, "restarts_speedup": speedups, "pruning": pruning}, indent=1))


if __name__ == "__main__":
    main()
