"""The ``device`` setting: validated on every machine, and a GPU run agrees with the CPU run."""

from __future__ import annotations

import pytest
import torch

from leakage import simulate
from leakage.errors import ConfigError
from leakage.simulation import SimulationSettings

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:", "cuda:x", "", 0])
def test_unknown_device_names_the_field_and_choices(device: object) -> None:
    with pytest.raises(ConfigError, match=r"device must be 'cpu', 'cuda' or 'cuda:N'"):
        SimulationSettings(device=device)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_refused_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        SimulationSettings(device="cuda")


@needs_cuda
def test_a_missing_cuda_index_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SimulationSettings(device=f"cuda:{torch.cuda.device_count()}")


def test_the_device_is_recorded_in_the_transcript() -> None:
    transcript = simulate(n_clients=3, rounds=1, algorithm="fedsgd", batch_size=None)
    assert transcript.settings["device"] == "cpu"


@needs_cuda
@pytest.mark.parametrize(
    ("algorithm", "batch_size", "partition", "options"),
    [
        ("fedsgd", None, "iid", {}),
        ("fedavg", 4, "iid", {}),
        # uneven sample counts: exact groups, per-client calls and padded buckets all run
        ("fedavg", 3, "dirichlet", {"alpha": 0.3}),
    ],
)
def test_training_on_cuda_agrees_with_the_cpu(
    algorithm: str, batch_size: int | None, partition: str, options: dict[str, float]
) -> None:
    settings = dict(
        n_clients=40, rounds=3, algorithm=algorithm, batch_size=batch_size, partition=partition,
        partition_options=options, seed=3,
    )
    on_cpu = simulate(**settings)  # type: ignore[arg-type]
    on_gpu = simulate(device="cuda", **settings)  # type: ignore[arg-type]
    assert on_gpu.rounds[-1].params_after.device.type == "cpu"
    for cpu_round, gpu_round in zip(on_cpu.rounds, on_gpu.rounds, strict=True):
        assert cpu_round.sampled == gpu_round.sampled
        torch.testing.assert_close(gpu_round.params_after, cpu_round.params_after, rtol=1e-4, atol=1e-5)
    for cpu_truth, gpu_truth in zip(on_cpu.truth.rounds, on_gpu.truth.rounds, strict=True):
        torch.testing.assert_close(gpu_truth.updates, cpu_truth.updates, rtol=1e-4, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("model", ["convnet", "resnet18"])  # resnet18: batch norm, so no padded calls
def test_convolutional_models_train_on_cuda_as_on_the_cpu(model: str) -> None:
    # One FedSGD step at a small lr: several steps of resnet18 on 8x8 digits in batches of
    # two are chaotic, and the rounding of cuDNN and the CPU then grows to whole units.
    settings = dict(
        model=model, n_clients=4, rounds=1, algorithm="fedsgd", batch_size=None, lr=0.01,
        partition_options={"samples_per_client": 4}, seed=1,
    )
    on_cpu = simulate(**settings)  # type: ignore[arg-type]
    on_gpu = simulate(device="cuda", **settings)  # type: ignore[arg-type]
    cpu_updates, gpu_updates = on_cpu.truth.rounds[0].updates, on_gpu.truth.rounds[0].updates
    # Per client, the direction and the size an attack would read. With cuDNN's default
    # TF32 convolutions resnet18's updates were 17% off (cosine 0.985); the simulator trains
    # in full float32, where they agree to about 1e-4.
    cosine = torch.nn.functional.cosine_similarity(gpu_updates.double(), cpu_updates.double(), dim=1)
    relative = (gpu_updates - cpu_updates).double().norm(dim=1) / cpu_updates.double().norm(dim=1)
    assert bool((cosine > 0.99999).all()), cosine
    assert bool((relative < 1e-3).all()), relative
    assert torch.backends.cudnn.allow_tf32  # the caller's setting is back
