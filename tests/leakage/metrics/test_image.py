"""Tests for per-sample MSE, PSNR and SSIM, checked against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from leakage.data import Dataset, load_dataset
from leakage.errors import ConfigError
from leakage.metrics import default_ssim_window, mse, psnr, ssim


def _reference_ssim(
    estimate: torch.Tensor, reference: torch.Tensor, *, data_range: float, win_size: int
) -> list[float]:
    """scikit-image's SSIM, one image at a time, on float64 arrays [C, H, W]."""
    return [
        float(
            structural_similarity(
                estimate_image.double().numpy(),
                reference_image.double().numpy(),
                data_range=data_range,
                channel_axis=0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                win_size=win_size,
            )
        )
        for estimate_image, reference_image in zip(estimate, reference, strict=True)
    ]


def _noisy(images: torch.Tensor, scale: float, seed: int) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed), dtype=images.dtype)
    return (images + scale * noise).clamp(0.0, 1.0)


@pytest.fixture(scope="module")
def patches() -> Dataset:
    return load_dataset("sample_patches")


# --- mse and psnr ---------------------------------------------------------------------


def test_mse_matches_a_loop_over_samples(generator: torch.Generator) -> None:
    estimate = torch.rand(5, 3, 4, 6, generator=generator)
    reference = torch.rand(5, 3, 4, 6, generator=generator)

    values = mse(estimate, reference)

    expected = [float(((e.double() - r.double()) ** 2).mean()) for e, r in zip(estimate, reference, strict=True)]
    assert values.shape == (5,) and values.dtype == torch.float64
    assert values.tolist() == pytest.approx(expected, rel=1e-12)


def test_psnr_matches_skimage(generator: torch.Generator) -> None:
    reference = torch.rand(4, 1, 8, 8, generator=generator, dtype=torch.float64)
    estimate = _noisy(reference, 0.1, seed=1)

    values = psnr(estimate, reference, data_range=1.0)

    expected = [
        peak_signal_noise_ratio(r.numpy(), e.numpy(), data_range=1.0) for e, r in zip(estimate, reference, strict=True)
    ]
    assert values.tolist() == pytest.approx(expected, rel=1e-12)


def test_psnr_is_infinite_for_an_exact_recovery_and_scales_with_the_range() -> None:
    reference = torch.zeros(2, 3)
    estimate = torch.tensor([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])

    exact, off_by_two = psnr(estimate, reference, data_range=20.0).tolist()

    assert exact == float("inf")
    assert off_by_two == pytest.approx(20.0)


@pytest.mark.parametrize("data_range", [0.0, -1.0, float("nan"), float("inf"), True])
def test_psnr_rejects_a_bad_data_range(data_range: float) -> None:
    with pytest.raises(ConfigError, match="data_range"):
        psnr(torch.zeros(1, 2), torch.zeros(1, 2), data_range=data_range)


def test_metrics_name_the_mismatched_inputs() -> None:
    with pytest.raises(
        ConfigError, match=r"estimate and reference must have the same shape, got \(2, 3\) and \(2, 4\)"
    ):
        mse(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="estimate must have at least 2 dimensions"):
        psnr(torch.zeros(3), torch.zeros(3), data_range=1.0)


# --- ssim against scikit-image ---------------------------------------------------------


def test_ssim_matches_skimage_on_random_rgb_images(generator: torch.Generator) -> None:
    reference = torch.rand(4, 3, 32, 32, generator=generator, dtype=torch.float64)
    estimate = _noisy(reference, 0.2, seed=2)

    values = ssim(estimate, reference, data_range=1.0)

    expected = _reference_ssim(estimate, reference, data_range=1.0, win_size=11)
    assert values.shape == (4,) and values.dtype == torch.float64
    assert np.allclose(values.numpy(), expected, rtol=0, atol=1e-5)


def test_ssim_matches_skimage_on_non_square_images_in_another_range(generator: torch.Generator) -> None:
    reference = 255.0 * torch.rand(3, 2, 13, 21, generator=generator, dtype=torch.float64)
    estimate = reference + 20.0 * torch.randn(reference.shape, generator=generator, dtype=torch.float64)

    values = ssim(estimate, reference, data_range=255.0)

    assert np.allclose(values.numpy(), _reference_ssim(estimate, reference, data_range=255.0, win_size=11), atol=1e-5)


def test_ssim_matches_skimage_on_real_photo_patches(patches: Dataset) -> None:
    reference = patches.denormalize(patches.inputs[:6])
    noisy = _noisy(reference, 0.05, seed=3)
    other_patches = patches.denormalize(patches.inputs[1000:1006])

    values = torch.cat([ssim(noisy, reference, data_range=1.0), ssim(other_patches, reference, data_range=1.0)])

    expected = _reference_ssim(noisy, reference, data_range=1.0, win_size=11) + _reference_ssim(
        other_patches, reference, data_range=1.0, win_size=11
    )
    assert np.allclose(values.numpy(), expected, atol=1e-5)


def test_ssim_on_8x8_digits_uses_a_7x7_window_like_skimage(digits: Dataset) -> None:
    reference = digits.denormalize(digits.inputs[:8])
    estimate = _noisy(reference, 0.1, seed=4)

    values = ssim(estimate, reference, data_range=1.0)

    assert default_ssim_window(8, 8) == 7
    assert np.allclose(values.numpy(), _reference_ssim(estimate, reference, data_range=1.0, win_size=7), atol=1e-5)
    with pytest.raises(ValueError, match="win_size exceeds image extent"):
        _reference_ssim(estimate[:1], reference[:1], data_range=1.0, win_size=11)


@pytest.mark.parametrize("win_size", [1, 3, 5, 9, 11, 13])
def test_ssim_matches_skimage_for_every_window_that_fits(win_size: int, generator: torch.Generator) -> None:
    reference = torch.rand(2, 1, 14, 16, generator=generator, dtype=torch.float64)
    estimate = _noisy(reference, 0.3, seed=5)

    values = ssim(estimate, reference, data_range=1.0, win_size=win_size)

    expected = _reference_ssim(estimate, reference, data_range=1.0, win_size=win_size)
    assert np.allclose(values.numpy(), expected, atol=1e-5)


def test_ssim_of_float32_inputs_equals_ssim_of_float64(generator: torch.Generator) -> None:
    reference = torch.rand(3, 3, 16, 16, generator=generator)
    estimate = _noisy(reference, 0.1, seed=6)

    single = ssim(estimate, reference, data_range=1.0)
    double = ssim(estimate.double(), reference.double(), data_range=1.0)

    assert torch.equal(single, double)


def test_ssim_is_one_for_identical_images_symmetric_and_scale_invariant(generator: torch.Generator) -> None:
    reference = torch.rand(3, 1, 12, 12, generator=generator, dtype=torch.float64)
    estimate = _noisy(reference, 0.2, seed=7)

    identical = ssim(reference, reference, data_range=1.0)
    forward = ssim(estimate, reference, data_range=1.0)
    backward = ssim(reference, estimate, data_range=1.0)
    scaled = ssim(10.0 * estimate, 10.0 * reference, data_range=10.0)

    assert identical.tolist() == [1.0, 1.0, 1.0]
    assert torch.allclose(forward, backward, atol=1e-12)
    assert torch.allclose(forward, scaled, atol=1e-12)
    assert bool((forward < 1.0).all())


def test_default_ssim_window_is_11_or_the_largest_odd_side_that_fits() -> None:
    assert [default_ssim_window(side, side) for side in (3, 4, 7, 8, 10, 11, 12, 64)] == [3, 3, 7, 7, 9, 11, 11, 11]
    assert default_ssim_window(8, 32) == 7


@pytest.mark.parametrize(
    ("shape", "win_size", "message"),
    [
        ((2, 8, 8), None, r"ssim needs images \[B, C, H, W\]"),
        ((2, 1, 8, 8), 4, "win_size must be an odd integer"),
        ((2, 1, 8, 8), 9, "win_size must fit in the 8 x 8 images"),
        ((2, 1, 8, 8), 0, "win_size must be an odd integer"),
    ],
)
def test_ssim_rejects_bad_shapes_and_windows(shape: tuple[int, ...], win_size: int | None, message: str) -> None:
    images = torch.zeros(shape)

    with pytest.raises(ConfigError, match=message):
        ssim(images, images, data_range=1.0, win_size=win_size)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_run_on_cuda_and_agree_with_cpu(generator: torch.Generator) -> None:
    reference = torch.rand(4, 3, 16, 16, generator=generator)
    estimate = _noisy(reference, 0.1, seed=8)

    on_gpu = [
        metric.cpu()
        for metric in (
            mse(estimate.cuda(), reference.cuda()),
            psnr(estimate.cuda(), reference.cuda(), data_range=1.0),
            ssim(estimate.cuda(), reference.cuda(), data_range=1.0),
        )
    ]

    on_cpu = [
        mse(estimate, reference),
        psnr(estimate, reference, data_range=1.0),
        ssim(estimate, reference, data_range=1.0),
    ]
    for gpu_value, cpu_value in zip(on_gpu, on_cpu, strict=True):
        assert torch.allclose(gpu_value, cpu_value, atol=1e-9)
