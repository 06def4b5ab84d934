"""Save originals and their reconstructions side by side as one PNG, for reports and notebooks."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from leakage.checks import require_int
from leakage.errors import ConfigError
from leakage.files import write_atomically
from leakage.metrics._validation import check_finite, check_same_shape
from leakage.metrics.matching import _match

__all__ = ["GRID_PADDING", "encode_reconstruction_grid", "save_reconstruction_grid"]

GRID_PADDING = 2
"""White pixels between neighbouring tiles and around the grid."""

_MAX_DEFAULT_COLUMNS = 8


def save_reconstruction_grid(
    originals: Tensor,
    reconstructions: Tensor,
    path: str | os.PathLike[str],
    *,
    value_range: tuple[float, float],
    nrow: int | None = None,
    match_first: bool = False,
    upscale: int = 1,
) -> Path:
    """Write the originals (top rows) above their reconstructions (bottom rows) as one PNG; return its path.

    The image is :func:`encode_reconstruction_grid`'s. It is written with
    :func:`~leakage.files.write_atomically`, so a reader never sees half an image;
    missing parent folders are created.

    Args:
        originals: ``[B, C, H, W]`` original images (raw values), ``C`` 1 or 3.
        reconstructions: ``[B, C, H, W]`` reconstructions, in the originals' order
            unless ``match_first``.
        path: where to write; must end in ``.png``.
        value_range: ``(low, high)`` of raw values.
        nrow: tiles per row; ``None`` means ``min(B, 8)``.
        match_first: reorder the reconstructions by optimal matching
            (:func:`~leakage.metrics.match_reconstructions`) before drawing.
        upscale: integer factor to enlarge each pixel (nearest neighbour), e.g. 4
            for 8 x 8 digits.

    Raises:
        ConfigError: the inputs are not ``[B, C, H, W]`` images with 1 or 3 channels of
            one shape (tabular rows cannot be drawn), hold NaN or Inf, or an option is
            invalid.

    >>> import tempfile, pathlib
    >>> images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     written = save_reconstruction_grid(images, images, pathlib.Path(folder) / "grid.png",
    ...                                        value_range=(0.0, 1.0), upscale=2)
    ...     Image.open(written).size
    (56, 38)
    """
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ConfigError(f"path must end in .png, got {str(target)!r}")
    png = encode_reconstruction_grid(
        originals, reconstructions, value_range=value_range, nrow=nrow, match_first=match_first, upscale=upscale
    )
    return write_atomically(target, png)


def encode_reconstruction_grid(
    originals: Tensor,
    reconstructions: Tensor,
    *,
    value_range: tuple[float, float],
    nrow: int | None = None,
    match_first: bool = False,
    upscale: int = 1,
) -> bytes:
    """Return the PNG bytes of the originals (top rows) above their reconstructions (bottom rows).

    Tiles are laid out ``nrow`` per row: ``ceil(B / nrow)`` rows of originals, then as
    many rows of reconstructions, so reconstruction ``i`` sits in the same column as
    original ``i``, ``ceil(B / nrow)`` rows below it. Pixel values are clamped to
    ``value_range`` and scaled to ``[0, 1]`` (then to 0..255), so out-of-range
    reconstructions show as saturated instead of rescaling the whole image. Tiles are
    separated by :data:`GRID_PADDING` white pixels. The image is
    ``nrow * (upscale * W + 2) + 2`` pixels wide and
    ``2 * ceil(B / nrow) * (upscale * H + 2) + 2`` high; one channel gives a grayscale
    PNG, three an RGB one. Arguments are those of :func:`save_reconstruction_grid`.

    Raises:
        ConfigError: as :func:`save_reconstruction_grid`.

    >>> import io
    >>> images = torch.zeros(1, 1, 8, 8)
    >>> Image.open(io.BytesIO(encode_reconstruction_grid(images, images, value_range=(0.0, 1.0), upscale=12))).size
    (100, 198)
    """
    check_same_shape("originals", originals, "reconstructions", reconstructions, min_dim=2)
    if originals.dim() != 4:
        raise ConfigError(
            f"save_reconstruction_grid draws images [B, C, H, W]; got shape {tuple(originals.shape)}"
            + (" (tabular rows cannot be drawn as images)" if originals.dim() == 2 else "")
        )
    channels = int(originals.shape[1])
    if channels not in (1, 3):
        raise ConfigError(f"save_reconstruction_grid draws 1 (grayscale) or 3 (RGB) channels, got {channels}")
    check_finite("originals", originals)
    check_finite("reconstructions", reconstructions)
    low, high = _check_value_range(value_range)
    batch = int(originals.shape[0])
    columns = min(batch, _MAX_DEFAULT_COLUMNS) if nrow is None else require_int("nrow", nrow, minimum=1)
    factor = require_int("upscale", upscale, minimum=1)

    images = originals.detach().cpu()
    drawn = reconstructions.detach().cpu()
    if match_first:
        drawn = drawn[_match(drawn, images)]
    grid = torch.cat([_tile_rows(images, columns), _tile_rows(drawn, columns)], dim=0)
    scaled = (grid.clamp(low, high) - low) / (high - low)
    canvas = _layout(scaled, factor, columns=columns)
    image = Image.fromarray(canvas[:, :, 0] if canvas.shape[2] == 1 else canvas)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _check_value_range(value_range: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(bound) for bound in value_range)
    except (TypeError, ValueError):
        raise ConfigError(f"value_range must be (low, high), got {value_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"value_range must be finite (low, high) with low < high, got {value_range!r}")
    return low, high


def _tile_rows(images: Tensor, columns: int) -> Tensor:
    """Return ``[rows, columns, C, H, W]``: the images row-major, empty slots NaN (drawn white)."""
    batch = images.shape[0]
    rows = math.ceil(batch / columns)
    slots = torch.full((rows * columns, *images.shape[1:]), math.nan, dtype=torch.float64)
    slots[:batch] = images.to(torch.float64)
    return slots.reshape(rows, columns, *images.shape[1:])


def _layout(tiles: Tensor, factor: int, *, columns: int) -> np.ndarray[tuple[int, ...], np.dtype[np.uint8]]:
    """Return the ``[height, width, C]`` uint8 canvas of ``tiles`` ``[rows, columns, C, H, W]`` in ``[0, 1]``."""
    rows, _, channels, height, width = tiles.shape
    flat = tiles.reshape(rows * columns, channels, height, width)
    if factor > 1:
        flat = F.interpolate(flat, scale_factor=factor, mode="nearest")
    # Pad each tile on its right and bottom, lay tiles out, then pad the top and left edges.
    flat = F.pad(flat, (0, GRID_PADDING, 0, GRID_PADDING), value=math.nan)
    tile_height, tile_width = flat.shape[-2:]
    canvas = flat.reshape(rows, columns, channels, tile_height, tile_width).permute(2, 0, 3, 1, 4)
    canvas = canvas.reshape(channels, rows * tile_height, columns * tile_width)
    canvas = F.pad(canvas, (GRID_PADDING, 0, GRID_PADDING, 0), value=math.nan)
    canvas = torch.nan_to_num(canvas, nan=1.0)
    pixels = (canvas * 255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    return pixels.numpy()
