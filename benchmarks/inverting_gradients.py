"""Inverting Gradients on both ``convnet`` variants: reconstruction quality over seeds, batched restarts' speed.

Prints one JSON object ``{"quality": [...], "restarts_speedup": [...]}``.

``quality``: Inverting Gradients (1000 signed Adam iterations, 4 restarts, cosine distance
plus total variation 1e-4) against the FedSGD gradient of one ``sample_patches`` image
(32x32 RGB) through

- ``convnet`` (variant ``gap``, width 32: the default model, global average pooling);
- ``convnet`` variant ``geiping``, the ConvNet of Geiping et al. (NeurIPS 2020), with its
  batch normalisation on batch statistics, as a client's training step computes it;
- the same without batch normalisation: the function the paper's experiments attacked
  (their untrained model in evaluation mode, where batch normalisation with fresh running
  statistics is a fixed affine map per channel).

A seed draws the model's weights, the image and the attack's starts. Each row gives the
median PSNR (dB, on the reconstruction clamped to [0, 1] against the raw image), the
per-seed PSNRs, the share of seeds at >= 30 dB, the median SSIM, the label accuracy,
the median final cosine distance of the chosen restart and the median seconds.

``restarts_speedup``: 8 restarts of the same attack, run batched (one ``vmap`` call
evaluates every restart) and one restart after another, on each model. Both paths are
warmed up first, since the first autograd and ``vmap`` calls of a process pay seconds of
one-off set-up that a single timed pass charges to whichever path runs first; then they
are timed alternately ``repeats`` times and the medians and their ratio are printed.

One torch thread. Usage:
python benchmarks/inverting_gradients.py [--quick] [--device cpu|cuda] [--geiping-width 16]
[--parts quality,restarts]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from attacks import Knowledge, Observation, create_attack
from leakage import Dataset, create_model, load_dataset
from leakage.metrics import score_reconstruction

SUCCESS_PSNR = 30.0


def _clock(device: torch.device) -> float:
    """Wall seconds, after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _progress(line: str) -> None:
    """One line on stderr per finished measurement, so a run cut short still shows what it measured."""
    print(line, file=sys.stderr, flush=True)


def _setting(
    dataset: Dataset, model_options: dict[str, Any], *, seed: int, device: torch.device
) -> tuple[Observation, Knowledge, torch.Tensor]:
    """One client's FedSGD gradient on one image: the observation, the knowledge and the image's index."""
    indices = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(1000 + seed))[:1]
    model = create_model(
        "convnet", input_shape=dataset.input_shape, num_classes=dataset.num_classes,
        generator=torch.Generator().manual_seed(seed), **model_options,
    ).to(device)
    loss = torch.nn.functional.cross_entropy(model(dataset.inputs[indices].to(device)), dataset.targets[indices].to(device))
    observation = Observation.from_gradients(model, torch.autograd.grad(loss, list(model.parameters())))
    return observation, Knowledge.from_dataset(dataset, model, num_samples=1), indices


def quality(
    dataset: Dataset, model_options: dict[str, Any], *, seeds: int, iterations: int, device: torch.device
) -> dict[str, Any]:
    """Reconstruct one image per seed through ``convnet(**model_options)``; return the figures."""
    psnrs, ssims, accuracies, distances, seconds = [], [], [], [], []
    options = {"iterations": iterations, "restarts": 4}
    for seed in range(seeds):
        observation, knowledge, indices = _setting(dataset, model_options, seed=seed, device=device)
        started = _clock(device)
        result = create_attack("inverting_gradients", **options).run(
            observation, knowledge, generator=torch.Generator().manual_seed(seed)
        )
        seconds.append(_clock(device) - started)
        score = score_reconstruction(
            result.raw_inputs.cpu().clamp(*dataset.value_range), dataset.denormalize(dataset.inputs[indices]),
            reconstructed_labels=result.labels.cpu(), true_labels=dataset.targets[indices],
            data_range=dataset.value_range[1] - dataset.value_range[0], kind=dataset.kind,
        )
        psnrs.append(round(min(score.psnr, 300.0), 2))  # an exact recovery has infinite PSNR
        ssims.append(score.ssim if score.ssim is not None else float("nan"))
        accuracies.append(score.label_accuracy)
        distances.append(float(result.objective))
        _progress(f"quality {model_options} seed {seed}: {psnrs[-1]} dB, {seconds[-1]:.1f} s")
    return {
        "model": "convnet",
        "model_options": model_options,
        "seeds": seeds,
        "options": options,
        "psnr": statistics.median(psnrs),
        "psnrs": psnrs,
        "success_rate": sum(p >= SUCCESS_PSNR for p in psnrs) / seeds,
        "ssim": statistics.median(ssims),
        "label_accuracy": statistics.mean(accuracies),
        "cosine_distance": statistics.median(distances),
        "seconds": statistics.median(seconds),
    }


def restarts_speedup(
    dataset: Dataset, model_options: dict[str, Any], *, restarts: int, iterations: int, repeats: int, device: torch.device
) -> dict[str, Any]:
    """Time ``restarts`` restarts run batched and one at a time, alternately, after a warm-up of both."""
    observation, knowledge, _ = _setting(dataset, model_options, seed=0, device=device)

    def timed(batched: bool, steps: int) -> float:
        attack = create_attack("inverting_gradients", iterations=steps, restarts=restarts, batched=batched)
        started = _clock(device)
        attack.run(observation, knowledge, generator=torch.Generator().manual_seed(0))
        return _clock(device) - started

    first = {"batched": timed(True, 2), "one_at_a_time": timed(False, 2)}
    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for batched in (True, False):
            timings[batched].append(timed(batched, iterations))
    _progress(f"restarts_speedup {model_options}: batched {timings[True]}, one at a time {timings[False]}")
    batched_s = statistics.median(timings[True])
    one_at_a_time_s = statistics.median(timings[False])
    return {
        "model": "convnet",
        "model_options": model_options,
        "restarts": restarts,
        "iterations": iterations,
        "repeats": repeats,
        "warm_up_s": first,
        "batched_s": batched_s,
        "one_at_a_time_s": one_at_a_time_s,
        "speedup": one_at_a_time_s / batched_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and iterations (a smoke test)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where models and attacks run")
    parser.add_argument(
        "--geiping-width", type=int, default=16,
        help="width w of the geiping ConvNet (the model's default is 32; 16 keeps a CPU run under an hour)",
    )
    parser.add_argument(
        "--parts", default="quality,restarts",
        help="comma-separated parts to run: quality (PSNR over seeds), restarts (batched vs one at a time)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts or not parts <= {"quality", "restarts"}:
        parser.error(f"--parts: choose from quality, restarts; got {args.parts!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available on this machine")
    device = torch.device(args.device)
    torch.set_num_threads(1)
    patches = load_dataset("sample_patches")
    variants: list[dict[str, Any]] = [
        {},
        {"variant": "geiping", "width": args.geiping_width},
        {"variant": "geiping", "width": args.geiping_width, "batch_norm": False},
    ]
    seeds, iterations = (2, 100) if args.quick else (5, 1000)
    rows = [
        quality(patches, options, seeds=seeds, iterations=iterations, device=device)
        for options in variants
        if "quality" in parts
    ]
    speedups = [
        restarts_speedup(
            patches, options, restarts=8, iterations=5 if args.quick else 20, repeats=1 if args.quick else 3, device=device
        )
        for options in variants
        if "restarts" in parts
    ]
    print(json.dumps({"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "quality": rows, "restarts_speedup": speedups}, indent=1))


if __name__ == "__main__":
    main()
