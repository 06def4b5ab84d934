"""Quality and speed of the gradient inversion attacks, over seeds, with honest metrics.

Prints one JSON object ``{"idlg_vs_plain": {...}, "results": [...], "restarts_speedup": [...],
"pruning": [...]}`` (only the keys of the cases run). Each result is one case run over
several seeds (a seed draws the model's weights, the target sample(s) and the attack's
initialisation) and reports:

- ``success_rate``: share of seeds whose reconstruction reaches PSNR >= 30 dB (these
  attacks are bimodal: exact or noise, so a mean PSNR alone misleads);
- ``psnr``, ``ssim``: medians over seeds (after Hungarian matching for batches, on
  denormalised inputs in their real range); ``label_accuracy``: mean over seeds;
- ``seconds``: median wall seconds per reconstruction; ``objective_evals_per_s``: median
  objective evaluations (for batched restarts: candidate evaluations) per second.

Cases (``--cases``, comma-separated; all by default):

- ``idlg``: ours beside a plain single-restart iDLG (:func:`plain_idlg`: float32,
  ``torch.optim.LBFGS``, 300 steps, the textbook loop), on the same seeds and images: the
  sigmoid ``lenet`` with one 32x32 ``sample_patches`` image, fed in [0, 1] without
  normalisation as in the DLG paper. Per seed: PSNR, seconds, objective evaluations of
  both; summary: successes (>= 30 dB), median PSNR, median seconds, and the speed ratio
  per image (plain seconds / ours, median over seeds). Each seed runs both back to back,
  alternating which goes first. Ours also appears in ``results``.
- ``dlg``: DLG in the same setting.
- ``inverting_gradients``: Inverting Gradients on ``convnet`` with batch 1 and batch 4; a
  FedAvg update of 5 local steps (one image, 5 epochs) attacked by unrolling; and
  ``restarts_speedup``, which times 8 restarts of the same Inverting Gradients loop run
  batched (``vmap``) against a plain loop over restarts (no ``vmap``), for ``convnet`` of
  width 32 (the default) and 16.
- ``analytic``: the analytic inversion of ``mlp``'s first layer on ``digits`` (batch 1 and 4).
- ``pruning``: DLG against gradients pruned to their largest ``keep`` fraction (top-k, the
  DLG paper's defense) on a small sigmoid ``mlp`` where DLG is exact without pruning.

Everything runs with one torch thread, on ``--device`` (``cpu`` by default; ``cuda`` where
a GPU is present, timed with synchronisation).

Usage: python benchmarks/gradient_inversion.py [--quick] [--cases idlg,dlg,...] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F

from attacks import Knowledge, Observation, create_attack
from leakage import Dataset, create_model, load_dataset, simulate
from leakage.metrics import psnr, score_reconstruction
from leakage.models import ParameterLayout

SUCCESS_PSNR = 30.0


def _raw(dataset: Dataset) -> Dataset:
    """The dataset with inputs in [0, 1] and no normalisation (the DLG paper's setting)."""
    channels = dataset.input_shape[0]
    return replace(
        dataset, inputs=dataset.denormalize(dataset.inputs), mean=torch.zeros(channels, 1, 1), std=torch.ones(channels, 1, 1)
    )


def _gradient_observation(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> Observation:
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    return Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters())))


def _on(observation: Observation, device: torch.device) -> Observation:
    return replace(observation, params=observation.params.to(device), value=observation.value.to(device))


def _clock(device: torch.device) -> float:
    """Wall seconds, after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _psnr(reconstruction: torch.Tensor, truth: torch.Tensor) -> float:
    """PSNR in dB of one image in [0, 1], capped at 300 (an exact recovery is infinite)."""
    return min(float(psnr(reconstruction.detach().cpu().clamp(0, 1), truth, data_range=1.0)[0]), 300.0)


def plain_idlg(
    model: torch.nn.Module,
    gradients: list[torch.Tensor],
    input_shape: tuple[int, ...],
    *,
    generator: torch.Generator,
    steps: int = 300,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The textbook iDLG loop, the reference ours is timed against; returns ``(dummy input, label, evaluations)``.

    As in the public code of Zhao et al. (2020): float32, one restart, dummy data drawn from
    ``randn``, the label is the class whose last-layer weight-gradient row sums to a negative
    number (its argmin), ``torch.optim.LBFGS`` with its defaults (lr 1, up to 20 iterations
    per step, no line search) for ``steps`` steps on the plain sum of squared gradient
    differences, stopping once that sum is below 1e-6 (their convergence check, one more
    evaluation per step). Everything runs on the device of ``model``.
    """
    model = copy.deepcopy(model).float()
    device = next(model.parameters()).device
    params = list(model.parameters())
    observed = [gradient.detach().float() for gradient in gradients]
    label = torch.argmin(observed[-2].sum(-1)).reshape(1)
    dummy = torch.randn((1, *input_shape), generator=generator).to(device).requires_grad_(True)
    optimizer = torch.optim.LBFGS([dummy])
    evaluations = 0

    def closure() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        optimizer.zero_grad()
        loss = F.cross_entropy(model(dummy), label)
        dummy_gradients = torch.autograd.grad(loss, params, create_graph=True)
        distance = sum(((dummy_g - g) ** 2).sum() for dummy_g, g in zip(dummy_gradients, observed, strict=True))
        assert isinstance(distance, torch.Tensor)
        distance.backward()  # type: ignore[no-untyped-call]
        return distance

    for _ in range(steps):
        optimizer.step(closure)  # type: ignore[no-untyped-call]
        if float(closure().detach()) < 1e-6:
            break
    return dummy.detach(), label, evaluations


def idlg_versus_plain(patches: Dataset, *, seeds: int, device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run :func:`plain_idlg` and our ``idlg`` on the same seeds and images; return the comparison and our row."""
    dataset = _raw(patches)
    rows = []
    results = []
    for seed in range(seeds):
        indices = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(1000 + seed))[:1]
        model = create_model(
            "lenet", input_shape=dataset.input_shape, num_classes=dataset.num_classes,
            generator=torch.Generator().manual_seed(seed),
        ).to(device)
        inputs, targets = dataset.inputs[indices], dataset.targets[indices]
        observation = _gradient_observation(model, inputs.to(device), targets.to(device))
        knowledge = Knowledge.from_dataset(dataset, model, num_samples=1)
        row: dict[str, Any] = {"seed": seed}
        for name in ("plain", "ours") if seed % 2 == 0 else ("ours", "plain"):  # alternate who runs first
            started = _clock(device)
            if name == "plain":
                gradients = list(ParameterLayout.of(model).unflatten(observation.value).values())
                found, labels, evaluations = plain_idlg(
                    model, gradients, dataset.input_shape, generator=torch.Generator().manual_seed(seed)
                )
            else:
                result = create_attack("idlg").run(observation, knowledge, generator=torch.Generator().manual_seed(seed))
                found, labels, evaluations = result.raw_inputs, result.labels, result.objective_evals
            seconds = _clock(device) - started
            if name == "ours":
                results.append((result, seconds, indices))
            row[name] = {
                "psnr": _psnr(found, inputs),
                "seconds": seconds,
                "objective_evals": evaluations,
                "label_correct": labels.tolist() == targets.tolist(),
            }
        rows.append(row)
        print(f"idlg seed {seed}: " + "  ".join(
            f"{name} {row[name]['psnr']:.1f} dB {row[name]['seconds']:.2f} s {row[name]['objective_evals']} evals"
            for name in ("plain", "ours")
        ), file=sys.stderr, flush=True)
    ratios = [row["plain"]["seconds"] / row["ours"]["seconds"] for row in rows]
    comparison = {
        "setting": "iDLG, sigmoid lenet, one 32x32 sample_patches image in [0, 1], FedSGD gradient",
        "device": str(device),
        "seeds": seeds,
        "per_seed": rows,
        "summary": {name: _summary([row[name] for row in rows]) for name in ("plain", "ours")},
        "speed_ratio_per_image": statistics.median(ratios),
        "speed_ratio_total": sum(row["plain"]["seconds"] for row in rows) / sum(row["ours"]["seconds"] for row in rows),
    }
    return comparison, _case_row("idlg", {}, dataset, "lenet", 1, 1, seeds, results)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "successes": sum(run["psnr"] >= SUCCESS_PSNR for run in runs),
        "median_psnr": statistics.median(run["psnr"] for run in runs),
        "median_seconds": statistics.median(run["seconds"] for run in runs),
        "median_objective_evals": statistics.median(run["objective_evals"] for run in runs),
    }


def _case_row(
    attack: str,
    options: dict[str, Any],
    dataset: Dataset,
    model_name: str,
    batch_size: int,
    local_steps: int,
    seeds: int,
    results: list[tuple[Any, float, torch.Tensor]],
) -> dict[str, Any]:
    """Score one case's ``(result, seconds, indices)`` per seed into its figures."""
    scores = [
        score_reconstruction(
            result.raw_inputs.detach().cpu().clamp(*dataset.value_range),
            dataset.denormalize(dataset.inputs[indices]),
            reconstructed_labels=result.labels.cpu(),
            true_labels=dataset.targets[indices],
            data_range=dataset.value_range[1] - dataset.value_range[0],
            kind=dataset.kind,
        )
        for result, _, indices in results
    ]
    seconds = [elapsed for _, elapsed, _ in results]
    rates = [result.objective_evals / elapsed if elapsed else 0.0 for result, elapsed, _ in results]
    psnrs = [min(s.psnr, 300.0) for s in scores]  # an exact recovery has infinite PSNR
    return {
        "attack": attack,
        "model": model_name,
        "dataset": dataset.name,
        "batch_size": batch_size,
        "local_steps": local_steps,
        "seeds": seeds,
        "success_rate": sum(p >= SUCCESS_PSNR for p in psnrs) / seeds,
        "psnr": statistics.median(psnrs),
        "ssim": statistics.median(s.ssim for s in scores if s.ssim is not None) if dataset.kind == "image" else None,
        "label_accuracy": statistics.mean(s.label_accuracy for s in scores),
        "seconds": statistics.median(seconds),
        "objective_evals_per_s": statistics.median(rates),
        "options": options,
    }


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
    device: torch.device,
) -> dict[str, Any]:
    """Run one attack case over ``seeds`` on ``device`` and return its figures."""
    results = []
    for seed in range(seeds):
        indices = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(1000 + seed))[:batch_size]
        if local_steps == 1:
            model = create_model(
                model_name, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                generator=torch.Generator().manual_seed(seed), **model_options,
            ).to(device)
            observation = _gradient_observation(
                model, dataset.inputs[indices].to(device), dataset.targets[indices].to(device)
            )
            knowledge = Knowledge.from_dataset(dataset, model, num_samples=batch_size)
        else:  # the client's FedAvg update, as the server receives it in a simulation
            subset = dataset.subset(indices)
            transcript = simulate(
                dataset=subset, model=model_name, model_options=model_options, n_clients=1, rounds=1,
                algorithm="fedavg", local_epochs=local_steps, batch_size=batch_size, lr=0.01, seed=seed,
            )
            record = transcript.rounds[0]
            observation = _on(Observation.from_view(record.views["server"], 0), device)
            knowledge = Knowledge.from_dataset(
                dataset, transcript.build_model(record.params_before).to(device), num_samples=batch_size,
                algorithm="fedavg", lr=0.01, local_epochs=local_steps, batch_size=batch_size,
            )
        started = _clock(device)
        result = create_attack(attack, **options).run(observation, knowledge, generator=torch.Generator().manual_seed(seed))
        results.append((result, _clock(device) - started, indices))
    return _case_row(attack, options, dataset, model_name, batch_size, local_steps, seeds, results)


def pruning_degradation(digits: Dataset, seeds: int = 5, *, device: torch.device) -> list[dict[str, Any]]:
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
            ).to(device)
            index = torch.tensor([seed * 37])
            clean = _gradient_observation(model, digits.inputs[index].to(device), digits.targets[index].to(device))
            pruned = Observation(clean.params, topk_sparsify(clean.value[None], keep)[0], "gradient")
            result = create_attack("dlg").run(pruned, Knowledge.from_dataset(digits, model), generator=torch.Generator().manual_seed(seed))
            score = score_reconstruction(
                result.raw_inputs.cpu().clamp(0, 1), digits.denormalize(digits.inputs[index]), reconstructed_labels=result.labels.cpu(),
                true_labels=digits.targets[index], data_range=1.0, kind="image",
            )
            psnrs.append(min(score.psnr, 300.0))
        rows.append({"keep": keep, "psnr": statistics.median(psnrs), "success_rate": sum(p >= 30 for p in psnrs) / seeds})
    return rows


def restarts_speedup(
    patches: Dataset, restarts: int = 8, iterations: int = 100, width: int = 32, *, device: torch.device
) -> dict[str, Any]:
    """Time the same Inverting Gradients loop with batched and one-at-a-time restarts."""
    model = create_model(
        "convnet", input_shape=patches.input_shape, num_classes=10, generator=torch.Generator().manual_seed(0), width=width
    ).to(device)
    observation = _gradient_observation(model, patches.inputs[:1].to(device), patches.targets[:1].to(device))
    knowledge = Knowledge.from_dataset(patches, model)
    timings = {}
    for batched in (True, False):
        attack = create_attack("inverting_gradients", iterations=iterations, restarts=restarts, batched=batched)
        started = _clock(device)
        attack.run(observation, knowledge)
        timings[batched] = _clock(device) - started
    return {
        "model": "convnet",
        "width": width,
        "restarts": restarts,
        "iterations": iterations,
        "batched_s": timings[True],
        "one_at_a_time_s": timings[False],
        "speedup": timings[False] / timings[True],
    }


def dlg_case(patches: Dataset, digits: Dataset, quick: bool, device: torch.device) -> dict[str, Any]:
    """DLG in the DLG paper's setting (sigmoid ``lenet``, one raw ``sample_patches`` image)."""
    row = run_case(
        "dlg", {}, dataset=_raw(patches), model_name="lenet", model_options={}, batch_size=1, local_steps=1,
        seeds=2 if quick else 10, device=device,
    )
    return {"results": [row]}


def idlg_case(patches: Dataset, digits: Dataset, quick: bool, device: torch.device) -> dict[str, Any]:
    """Ours beside the plain iDLG loop, same seeds and images (:func:`idlg_versus_plain`)."""
    comparison, row = idlg_versus_plain(patches, seeds=2 if quick else 10, device=device)
    return {"idlg_vs_plain": comparison, "results": [row]}


def inverting_gradients_case(patches: Dataset, digits: Dataset, quick: bool, device: torch.device) -> dict[str, Any]:
    """Inverting Gradients on ``convnet`` (batch 1, batch 4, a 5-step FedAvg update) and batched restarts."""
    options = {"iterations": 100 if quick else 1000}
    common: dict[str, Any] = {"dataset": patches, "model_name": "convnet", "model_options": {}, "device": device}
    rows = [
        run_case("inverting_gradients", options, batch_size=1, local_steps=1, seeds=2 if quick else 5, **common),
        run_case("inverting_gradients", options, batch_size=4, local_steps=1, seeds=1 if quick else 3, **common),
        run_case("inverting_gradients", options, batch_size=1, local_steps=5, seeds=1 if quick else 3, **common),
    ]
    speedups = [
        restarts_speedup(patches, iterations=20 if quick else 100, width=width, device=device) for width in (32, 16)
    ]
    return {"results": rows, "restarts_speedup": speedups}


def analytic_case(patches: Dataset, digits: Dataset, quick: bool, device: torch.device) -> dict[str, Any]:
    """The analytic inversion of ``mlp``'s first layer on ``digits``, batch 1 and 4."""
    common: dict[str, Any] = {"dataset": digits, "model_name": "mlp", "local_steps": 1, "seeds": 10, "device": device}
    rows = [
        run_case("analytic", {}, model_options={}, batch_size=1, **common),
        run_case("analytic", {}, model_options={"hidden": (512,)}, batch_size=4, **common),
    ]
    return {"results": rows}


def pruning_case(patches: Dataset, digits: Dataset, quick: bool, device: torch.device) -> dict[str, Any]:
    """DLG against top-k pruned gradients (:func:`pruning_degradation`)."""
    return {"pruning": pruning_degradation(digits, seeds=2 if quick else 5, device=device)}


CASES: dict[str, Callable[[Dataset, Dataset, bool, torch.device], dict[str, Any]]] = {
    "dlg": dlg_case,
    "idlg": idlg_case,
    "inverting_gradients": inverting_gradients_case,
    "analytic": analytic_case,
    "pruning": pruning_case,
}


def _parse_cases(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CASES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown case(s) {unknown or [text]}; choose from {', '.join(CASES)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and iterations (a smoke test)")
    parser.add_argument(
        "--cases", type=_parse_cases, default=list(CASES), help=f"comma-separated cases to run (default all: {','.join(CASES)})"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where models and attacks run")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available on this machine")
    device = torch.device(args.device)
    torch.set_num_threads(1)
    patches = load_dataset("sample_patches")
    digits = load_dataset("digits")
    figures: dict[str, Any] = {}
    for name in args.cases:
        for key, value in CASES[name](patches, digits, args.quick, device).items():
            figures[key] = figures.get(key, []) + value if isinstance(value, list) else value
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
