"""The report's figures as PNG bytes: leakage against the number of clients, ROC curves, reconstruction grids.

Plots are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas attached
directly, so nothing here selects a backend, opens a window or touches pyplot's global
figure registry. Every function returns the encoded PNG, ready to embed in a page.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from leakage.metrics import save_reconstruction_grid

__all__ = [
    "FIGURE_DPI",
    "RocCurve",
    "leakage_versus_clients_png",
    "reconstruction_grid_png",
    "roc_curves_png",
]

FIGURE_DPI = 100
"""Resolution of the plots: small enough that a report with a hundred figures stays a few MB."""

_GRID_TILE_PIXELS = 64
"""Reconstruction tiles are enlarged by a whole factor until their longer side reaches this many pixels."""

_LOG_SCALE_SPAN = 10.0
"""Client counts spanning more than this ratio are drawn on a logarithmic axis."""

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LARGEST_MARKER, _MARKER_STEP, _SMALLEST_MARKER = 11.0, 1.4, 3.0
"""Schemes that leak the same amount overlap: each later line gets a smaller marker of another shape, drawn on
top, so coinciding points show as nested markers instead of hiding one another."""


@dataclass(frozen=True)
class RocCurve:
    """One ROC curve of a distinguishing-game audit, as its legend names it."""

    label: str
    false_positive_rates: Sequence[float]
    true_positive_rates: Sequence[float]


def leakage_versus_clients_png(points_by_scheme: Mapping[str, Sequence[tuple[int, float]]]) -> bytes:
    """Return a PNG plotting headline leakage (y) against the number of clients (x), one line per scheme.

    The x axis turns logarithmic when the client counts span more than a factor of ten;
    its ticks sit exactly at the counts that were measured.

    Args:
        points_by_scheme: scheme name -> ``(n_clients, leakage)`` points, leakage in ``[0, 1]``;
            points are drawn in increasing ``n_clients`` order. Must hold at least one point.

    >>> leakage_versus_clients_png({"secagg": [(2, 1.0), (100, 0.02)]})[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    figure = Figure(figsize=(6.4, 3.2), layout="constrained")
    axes = figure.add_subplot()
    client_counts = sorted({count for points in points_by_scheme.values() for count, _ in points})
    for index, (scheme, points) in enumerate(points_by_scheme.items()):
        ordered = sorted(points)
        axes.plot(
            [count for count, _ in ordered],
            [leakage for _, leakage in ordered],
            marker=_MARKERS[index % len(_MARKERS)],
            markersize=max(_LARGEST_MARKER - _MARKER_STEP * index, _SMALLEST_MARKER),
            label=scheme,
            alpha=0.85,
        )
    if client_counts[0] > 0 and client_counts[-1] / client_counts[0] > _LOG_SCALE_SPAN:
        axes.set_xscale("log")
        axes.set_xlabel("number of clients (log scale)")
    else:
        axes.set_xlabel("number of clients")
    axes.xaxis.set_major_locator(FixedLocator(client_counts))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([str(count) for count in client_counts])
    axes.set_ylim(-0.05, 1.05)
    axes.set_ylabel("headline leakage")
    axes.grid(alpha=0.3)
    figure.legend(loc="outside right upper", frameon=False, fontsize="small")
    return _encode(figure)


def roc_curves_png(curves_by_panel: Mapping[str, Sequence[RocCurve]]) -> bytes:
    """Return a PNG with one ROC panel per key (a deployment), each with its curves and the chance diagonal.

    Args:
        curves_by_panel: panel title -> the curves drawn in it; at least one panel.

    >>> curve = RocCurve("dp / server", [0.0, 0.2, 1.0], [0.0, 0.7, 1.0])
    >>> roc_curves_png({"cross-device": [curve]})[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    panels = len(curves_by_panel)
    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(3.4 * columns, 3.3 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, (title, curves) in zip(grid.flat, curves_by_panel.items(), strict=False):
        axes.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="0.6", linewidth=1.0, label="chance")
        for curve in curves:
            axes.plot(curve.false_positive_rates, curve.true_positive_rates, label=curve.label)
        axes.set_title(title, fontsize="medium")
        axes.set_xlim(0.0, 1.0)
        axes.set_ylim(0.0, 1.0)
        axes.set_aspect("equal")
        axes.set_xlabel("false positive rate")
        axes.set_ylabel("true positive rate")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right", fontsize="x-small")
    for unused in grid.flat[panels:]:
        unused.set_axis_off()
    return _encode(figure)


def reconstruction_grid_png(
    originals: np.ndarray[tuple[int, ...], np.dtype[np.float64]],
    reconstructions: np.ndarray[tuple[int, ...], np.dtype[np.float64]],
    *,
    value_range: tuple[float, float],
) -> bytes:
    """Return the PNG of originals (top rows) above their reconstructions (bottom rows), pixel for pixel.

    The layout is :func:`~leakage.metrics.save_reconstruction_grid`'s, so reports and
    notebooks draw reconstructions the same way; small images are enlarged by a whole
    factor (nearest neighbour) so an 8 x 8 digit is still visible.

    Args:
        originals: ``[B, C, H, W]`` raw images, ``C`` 1 or 3.
        reconstructions: the attack's estimates, same shape, in the originals' order.
        value_range: ``(low, high)`` of raw pixel values; values outside are clamped.

    Raises:
        ConfigError: the arrays are not images of one shape, hold NaN or Inf, or the range is invalid.

    >>> images = np.zeros((1, 1, 8, 8))
    >>> reconstruction_grid_png(images, images, value_range=(0.0, 1.0))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    # Anything but [B, C, H, W] is rejected, with the reason, by save_reconstruction_grid.
    height, width = originals.shape[-2:] if originals.ndim == 4 else (1, 1)
    upscale = max(1, math.ceil(_GRID_TILE_PIXELS / max(height, width, 1)))
    with tempfile.TemporaryDirectory(prefix="leakage-report-") as folder:
        written = save_reconstruction_grid(
            torch.from_numpy(originals),
            torch.from_numpy(reconstructions),
            Path(folder) / "grid.png",
            value_range=value_range,
            upscale=upscale,
        )
        return written.read_bytes()


def _encode(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
    return buffer.getvalue()
