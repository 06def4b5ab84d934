"""Per-sample image quality metrics on raw (denormalised) tensors: MSE, PSNR and SSIM.

Every function scores a batch against a batch of the same shape and returns one
float64 value per sample (``[B]``) on the inputs' device. Pass images in their raw
value range (e.g. ``[0, 1]`` pixels, not the model's normalised inputs) together with
that range's width ``data_range = high - low``: PSNR and SSIM are only comparable
across datasets when the range is the real one.

All arithmetic runs in float64, so scores do not depend on whether an attack returned
float32 or float64 tensors, and SSIM matches scikit-image's float64 reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from leakage.errors import ConfigError
from leakage.metrics._validation import check_data_range, check_same_shape

__all__ = ["SSIM_WINDOW", "default_ssim_window", "mse", "psnr", "ssim"]

SSIM_WINDOW = 11
"""Side of the Gaussian SSIM window (sigma 1.5) of Wang et al. (2004)."""

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = SSIM_WINDOW // 2  # 5 = int(3.5 * 1.5 + 0.5): scipy's truncation at 3.5 sigma
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def mse(estimate: Tensor, reference: Tensor) -> Tensor:
    """Return the mean squared error of each sample, ``[B]`` float64.

    ``mse_i = mean_j (estimate[i, j] - reference[i, j]) ** 2`` over every element ``j``
    of sample ``i`` (all dimensions but the first).

    Args:
        estimate: ``[B, ...]`` reconstructions (raw values).
        reference: ``[B, ...]`` originals, same shape.

    Raises:
        ConfigError: the shapes differ or there is no sample dimension.

    >>> mse(torch.zeros(2, 1, 2, 2), torch.tensor([0.0, 1.0]).reshape(2, 1, 1, 1).expand(2, 1, 2, 2))
    tensor([0., 1.], dtype=torch.float64)
    """
    check_same_shape("estimate", estimate, "reference", reference, min_dim=2)
    return _mse(estimate, reference)


def psnr(estimate: Tensor, reference: Tensor, *, data_range: float) -> Tensor:
    """Return the peak signal-to-noise ratio of each sample in dB, ``[B]`` float64.

    ``psnr_i = 10 * log10(data_range ** 2 / mse_i)``. A sample recovered exactly
    (``mse_i == 0``) scores ``inf``; averaging a batch that holds one gives ``inf`` too,
    which is the honest answer for a perfect recovery.

    Args:
        estimate: ``[B, ...]`` reconstructions (raw values).
        reference: ``[B, ...]`` originals, same shape.
        data_range: ``high - low`` of the raw value range, e.g. ``1.0`` for pixels in ``[0, 1]``.

    Raises:
        ConfigError: the shapes differ or ``data_range`` is not a finite number > 0.

    >>> psnr(torch.zeros(2, 4), torch.tensor([[1.0] * 4, [0.0] * 4]), data_range=10.0).tolist()
    [20.0, inf]
    """
    check_same_shape("estimate", estimate, "reference", reference, min_dim=2)
    peak = check_data_range(data_range)
    return _psnr(estimate, reference, data_range=peak)


def default_ssim_window(height: int, width: int) -> int:
    """Return the SSIM window side used for ``height x width`` images: 11, or the largest odd side that fits.

    Images of at least 11 x 11 pixels use the full window of Wang et al. (2004).
    Smaller images (e.g. the 8 x 8 digits) use the largest odd number not above the
    shorter side, the value scikit-image asks its callers to pass as ``win_size``.

    >>> default_ssim_window(32, 32), default_ssim_window(8, 8), default_ssim_window(10, 12)
    (11, 7, 9)
    """
    shorter = min(height, width)
    return min(SSIM_WINDOW, shorter if shorter % 2 == 1 else shorter - 1)


def ssim(estimate: Tensor, reference: Tensor, *, data_range: float, win_size: int | None = None) -> Tensor:
    """Return the structural similarity of each image, averaged over its channels, ``[B]`` float64.

    SSIM of Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from error
    visibility to structural similarity", IEEE TIP 13(4), 2004. For every pixel ``p``
    of every channel, with Gaussian-weighted local statistics (11 x 11 window,
    sigma 1.5, weights summing to 1)::

        SSIM(p) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))
        C1 = (0.01 * data_range)^2,  C2 = (0.03 * data_range)^2

    where the variances are population (weighted) moments, ``sigma_x^2 = E[x^2] - mu_x^2``.
    The map is averaged over the pixels whose ``win_size`` neighbourhood lies inside the
    image (a border of ``(win_size - 1) // 2`` pixels is dropped), then over channels.
    With the default ``win_size=11`` that is exactly the valid, unpadded convolution
    region. With a smaller ``win_size`` (automatic for images under 11 x 11, see
    :func:`default_ssim_window`), the Gaussian is still 11 taps wide and its tails read
    mirrored pixels (``d c b a | a b c d``) past the border.

    This equals ``skimage.metrics.structural_similarity(x, y, data_range=data_range,
    channel_axis=0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    win_size=win_size)`` on each float64 image ``[C, H, W]``, computed for the whole
    batch at once.

    Args:
        estimate: ``[B, C, H, W]`` reconstructed images (raw values).
        reference: ``[B, C, H, W]`` original images, same shape.
        data_range: ``high - low`` of the raw value range.
        win_size: odd side of the neighbourhood that must fit in the image, at most
            ``min(H, W)``; ``None`` picks :func:`default_ssim_window`.

    Raises:
        ConfigError: the images are not ``[B, C, H, W]`` of one shape, ``data_range``
            is not a finite number > 0, or ``win_size`` is not odd or does not fit.

    >>> image = torch.linspace(0, 1, 144).reshape(1, 1, 12, 12)
    >>> ssim(image, image, data_range=1.0)
    tensor([1.], dtype=torch.float64)
    >>> bool(ssim(image, 1 - image, data_range=1.0) < 0)  # locally anti-correlated
    True
    """
    check_same_shape("estimate", estimate, "reference", reference, min_dim=2)
    if estimate.dim() != 4:
        raise ConfigError(f"ssim needs images [B, C, H, W], got shape {tuple(estimate.shape)}")
    peak = check_data_range(data_range)
    height, width = int(estimate.shape[-2]), int(estimate.shape[-1])
    window = default_ssim_window(height, width) if win_size is None else win_size
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ConfigError(f"win_size must be an odd integer >= 1, got {window!r}")
    if window > min(height, width):
        raise ConfigError(f"win_size must fit in the {height} x {width} images, got {window}")
    return _ssim(estimate, reference, data_range=peak, win_size=window)


def _mse(estimate: Tensor, reference: Tensor) -> Tensor:
    difference = estimate.to(torch.float64) - reference.to(torch.float64)
    return difference.square().reshape(difference.shape[0], -1).mean(dim=1)


def _psnr(estimate: Tensor, reference: Tensor, *, data_range: float) -> Tensor:
    # data_range**2 / 0 is inf in float64 and log10(inf) is inf, so no special case is needed.
    return 10.0 * torch.log10(data_range**2 / _mse(estimate, reference))


def _gaussian_taps(device: torch.device) -> Tensor:
    """Return the normalised 11-tap Gaussian (sigma 1.5) that scipy.ndimage.gaussian_filter uses."""
    offsets = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    taps = torch.exp(-0.5 * offsets.square() / _SSIM_SIGMA**2)
    return taps / taps.sum()


def _mirror_indices(length: int, pad: int, device: torch.device) -> Tensor:
    """Return indices that pad an axis of ``length`` by ``pad`` on both sides as ``d c b a | a b c d | d c b a``."""
    positions = torch.arange(-pad, length + pad, device=device) % (2 * length)
    return torch.where(positions < length, positions, 2 * length - 1 - positions)


def _ssim(estimate: Tensor, reference: Tensor, *, data_range: float, win_size: int) -> Tensor:
    """Return SSIM ``[B]`` of validated images; ``x``/``y`` are one channel of estimate/reference.

    ``mu_*`` are Gaussian-weighted local means, ``var_*``/``cov_xy`` local (population)
    variances and covariance, ``c1``/``c2`` the stabilisers of Wang et al. (2004).
    """
    batch, channels, height, width = estimate.shape
    x = estimate.to(torch.float64).reshape(batch * channels, 1, height, width)
    y = reference.to(torch.float64).reshape(batch * channels, 1, height, width)
    # The five local moments are filtered together: [5 * B * C, 1, H, W].
    moments = torch.cat([x, y, x * x, y * y, x * y])
    crop = (win_size - 1) // 2
    # The map keeps pixels crop .. side - 1 - crop. Each needs RADIUS pixels on either side,
    # so mirror only what the image lacks and then filter without padding; a crop wider
    # than the radius (win_size > 11) is cut afterwards.
    pad = max(0, _SSIM_RADIUS - crop)
    if pad:
        rows = _mirror_indices(height, pad, x.device)
        cols = _mirror_indices(width, pad, x.device)
        moments = moments[:, :, rows][:, :, :, cols]
    taps = _gaussian_taps(x.device)
    # Separable Gaussian: a column pass then a row pass, both "valid".
    moments = F.conv2d(moments, taps.reshape(1, 1, -1, 1))
    moments = F.conv2d(moments, taps.reshape(1, 1, 1, -1))
    extra = crop - _SSIM_RADIUS
    if extra > 0:
        moments = moments[:, :, extra:-extra, extra:-extra]
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = moments.chunk(5)
    var_x = mean_xx - mu_x * mu_x
    var_y = mean_yy - mu_y * mu_y
    cov_xy = mean_xy - mu_x * mu_y
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    )
    per_channel = ssim_map.reshape(batch, channels, -1).mean(dim=2)
    return per_channel.mean(dim=1)
