"""The report's figures as PNG images with their pixel sizes: ROC curves, sweeps, privacy against utility, grids.

Plots are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas attached
directly, so nothing here selects a backend, opens a window or touches pyplot's global
figure registry. Each drawing function returns the encoded PNG together with the sizes a
page needs to show it legibly: the image's width and height in pixels and, for plots, the
width in pixels of every axes box (the plotting area inside the ticks and labels), read
from matplotlib's layout of exactly the pixels that were encoded. A page that shows the
image at its natural size shows each axes that many pixels wide; the report's browser
test checks this against :data:`MIN_AXES_PIXELS`, and grid tiles against :data:`MIN_TILE_PIXELS`.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator
from PIL import Image

from leakage.metrics.grid import encode_reconstruction_grid

__all__ = [
    "FIGURE_DPI",
    "MIN_AXES_PIXELS",
    "MIN_TILE_PIXELS",
    "GridImage",
    "PlotImage",
    "RocCurve",
    "SweepSeries",
    "UtilityPoint",
    "draw_privacy_utility",
    "draw_reconstruction_grid",
    "draw_roc_curves",
    "draw_sweep",
]

FIGURE_DPI = 100
"""Resolution of the plots: small enough that a report with a hundred figures stays a few MB."""

MIN_AXES_PIXELS = 300
"""Every plot's axes box is at least this many pixels wide in the PNG, whatever its legend holds."""

MIN_TILE_PIXELS = 96
"""Reconstruction tiles are enlarged by a whole factor until they are at least this many pixels wide."""

_LineStyle = Literal["-", "--", "-.", ":", "none"]
_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES: tuple[_LineStyle, ...] = ("-", "--", "-.", ":")
_LARGEST_MARKER, _MARKER_STEP, _SMALLEST_MARKER = 9.0, 1.2, 3.0
"""Curves that coincide overlap: each later one gets a smaller marker of another shape, drawn on top, so
coinciding points show as nested markers instead of hiding one another."""

_LEGEND_WRAP = 52
"""Legend entries are wrapped to this many characters, so a long entry grows down instead of sideways."""

# Sizes in inches at FIGURE_DPI. The legend sits below the axes, so however many entries it
# has, it takes height and never width from the axes.
_PANEL_WIDTH, _PANEL_HEIGHT = 4.6, 3.4
_LEGEND_LINE_HEIGHT = 0.19


@dataclass(frozen=True)
class PlotImage:
    """A plot encoded as PNG, with the pixel sizes a page needs to show and check it."""

    png: bytes
    width: int  # pixels
    height: int  # pixels
    axes_widths: tuple[int, ...]  # pixel width of each axes box, in the order they were drawn


@dataclass(frozen=True)
class GridImage:
    """A reconstruction grid encoded as PNG, pixel for pixel."""

    png: bytes
    width: int  # pixels
    height: int  # pixels
    tile_width: int  # pixel width of one enlarged image in the grid


@dataclass(frozen=True)
class RocCurve:
    """One ROC curve of a distinguishing-game audit, as its legend names it."""

    label: str
    false_positive_rates: Sequence[float]
    true_positive_rates: Sequence[float]


@dataclass(frozen=True)
class SweepSeries:
    """One observer's points of a sweep over the number of clients, in increasing ``n_clients``."""

    label: str  # the observer, and the attack it ran
    metric: str  # the attack's headline measure, e.g. "update_cosine" or "psnr"
    n_clients: Sequence[int]
    leakage: Sequence[float]  # 0 (nothing beyond the MPC baseline) .. 1 (the update in the clear)
    value: Sequence[float]  # the metric measured under the swept scheme
    baseline: Sequence[float]  # the metric under MPC at the same size


@dataclass(frozen=True)
class UtilityPoint:
    """One scheme's mean leakage and the released model's mean test accuracy."""

    label: str
    leakage: float
    test_accuracy: float  # fraction in [0, 1]


def draw_roc_curves(
    title: str, curves: Sequence[RocCurve], *, false_positive_floor: float, log_true_positives: bool = False
) -> PlotImage:
    """Return one ROC panel (a deployment's audits) on a logarithmic false-positive axis, legend below.

    A logarithmic axis shows what matters for privacy, the true positive rate at low false
    positive rates, but cannot show a rate of 0: such points are drawn at
    ``false_positive_floor`` (the page says so), which should lie below every measurable
    rate, e.g. ``1 / trials``. The dashed chance line is ``TPR = FPR``.

    Args:
        title: the panel's title, e.g. the deployment.
        curves: the curves, at least one; points are drawn in the given order.
        false_positive_floor: where false positive rates of 0 (and below it) are drawn, in ``(0, 1)``.
        log_true_positives: draw the true positive rate on a logarithmic axis too (log-log,
            as membership inference is read), with rates of 0 drawn at the same floor.

    >>> curve = RocCurve("dp / server (AUC 0.80)", [0.0, 0.0, 0.2, 1.0], [0.0, 0.5, 0.7, 1.0])
    >>> image = draw_roc_curves("cross-device", [curve], false_positive_floor=1 / 64)
    >>> image.png[:8], min(image.axes_widths) >= MIN_AXES_PIXELS
    (b'\\x89PNG\\r\\n\\x1a\\n', True)
    """
    labels = [_wrap(curve.label) for curve in curves]
    chance_label = "chance (TPR = FPR)"
    figure = _figure(columns=1, rows=1, legend_lines=_legend_lines([chance_label, *labels], columns=1))
    axes = figure.add_subplot()
    chance = np.geomspace(false_positive_floor, 1.0, 64)
    axes.plot(chance, chance, linestyle="--", color="0.6", linewidth=1.0, label=chance_label)
    for index, (curve, label) in enumerate(zip(curves, labels, strict=True)):
        rates, true_rates, measured = _roc_on_log_axis(curve, false_positive_floor)
        axes.plot(rates, true_rates, label=label, alpha=0.9, markevery=measured, **_style(index))
    axes.set_xscale("log")
    axes.set_xlim(false_positive_floor / 1.25, 1.0)
    # Decades, plus the floor labelled 0: that is where a rate of 0 is drawn.
    decades = [10.0**power for power in range(math.floor(math.log10(false_positive_floor)) + 1, 1)]
    ticks = [false_positive_floor, *(tick for tick in decades if tick > 1.5 * false_positive_floor)]
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.set_xticklabels(["0", *(f"{tick:g}" for tick in ticks[1:])])
    if log_true_positives:
        for line in axes.get_lines():
            line.set_ydata(np.maximum(np.asarray(line.get_ydata(), dtype=float), false_positive_floor))
        axes.set_yscale("log")
        axes.set_ylim(false_positive_floor / 1.25, 1.05)
    else:
        axes.set_ylim(-0.02, 1.02)
    axes.set_title(title, fontsize="medium")
    axes.set_xlabel("false positive rate (log scale)")
    axes.set_ylabel("true positive rate" + (" (log scale)" if log_true_positives else ""))
    axes.grid(alpha=0.3, which="both")
    _legend_below(figure, axes.get_legend_handles_labels(), columns=1)
    return _encode(figure)


def _roc_on_log_axis(curve: RocCurve, floor: float) -> tuple[list[float], list[float], list[int]]:
    """Return the curve's points with straight (linear-scale) segments sampled densely, and which points were measured.

    A ROC curve's segments are straight in linear coordinates (mixing two thresholds at
    random); on a logarithmic axis they bend, so each is sampled at geometric steps.
    Rates below ``floor`` are drawn at it.
    """
    rates, true_rates, measured = [], [], []
    points = list(zip(curve.false_positive_rates, curve.true_positive_rates, strict=True))
    for index, (rate, true_rate) in enumerate(points):
        if index > 0:
            previous_rate, previous_true_rate = points[index - 1]
            start = max(previous_rate, floor)
            if rate > start:
                for step in np.geomspace(start, rate, 24)[1:-1]:
                    share = (step - previous_rate) / (rate - previous_rate)
                    rates.append(float(step))
                    true_rates.append(previous_true_rate + share * (true_rate - previous_true_rate))
        measured.append(len(rates))
        rates.append(max(rate, floor))
        true_rates.append(true_rate)
    return rates, true_rates, measured


def draw_sweep(title: str, curves: Sequence[SweepSeries], *, hiding_leakage: float) -> PlotImage:
    """Return a sweep's panels: leakage against the number of clients, then each metric against its baseline.

    The first panel has one curve per observer on a logarithmic client axis with ticks at
    exactly the swept counts, and a dotted line at ``hiding_leakage``. Each further panel (one
    per metric the observers report) draws the measured value (solid) and the MPC baseline
    at the same size (dashed, same colour). Panels sit two to a row.

    Args:
        title: the sweep's name and scheme.
        curves: one per observer, at least one, each with at least one point.
        hiding_leakage: the leakage at or below which an observer's estimate is no better
            than the released model's direction (``leakage.quantify``'s ``HIDES_AT_MOST``).

    >>> curve = SweepSeries("server (aggregate)", "update_cosine", [2, 10, 100], [1.0, 0.3, 0.02],
    ...                    [1.0, 0.55, 0.38], [0.37, 0.37, 0.37])
    >>> image = draw_sweep("secagg", [curve], hiding_leakage=0.25)
    >>> len(image.axes_widths), min(image.axes_widths) >= MIN_AXES_PIXELS
    (2, True)
    """
    metrics = list(dict.fromkeys(curve.metric for curve in curves))
    panels = 1 + len(metrics)
    columns = min(panels, 2)
    rows = math.ceil(panels / columns)
    labels = [_wrap(curve.label) for curve in curves]
    hiding = _wrap(f"leakage {hiding_leakage}: no better than the released model's direction")
    keys = [hiding, *labels, "measured", "MPC baseline"]
    figure = _figure(columns=columns, rows=rows, legend_lines=_legend_lines(keys, columns=3))
    grid = figure.subplots(rows, columns, squeeze=False)
    counts = sorted({count for curve in curves for count in curve.n_clients})

    leakage_axes = grid.flat[0]
    leakage_axes.axhline(hiding_leakage, color="0.45", linestyle=":", linewidth=1.2)
    for index, curve in enumerate(curves):
        leakage_axes.plot(curve.n_clients, curve.leakage, alpha=0.9, **_style(index, linestyle="-"))
    leakage_axes.set_ylim(-0.05, 1.05)
    leakage_axes.set_ylabel("leakage")
    leakage_axes.set_title("leakage", fontsize="medium")

    for axes, metric in zip(grid.flat[1:], metrics, strict=False):
        for index, curve in enumerate(curves):
            if curve.metric != metric:
                continue
            style = _style(index, linestyle="-")
            axes.plot(curve.n_clients, curve.value, alpha=0.9, **style)
            axes.plot(
                curve.n_clients, curve.baseline, color=style["color"], linestyle="--", linewidth=1.0, alpha=0.8
            )
        axes.set_ylabel(metric)
        axes.set_title(f"{metric}: measured and MPC baseline", fontsize="medium")
    for axes in grid.flat[:panels]:
        _client_axis(axes, counts)
    for unused in grid.flat[panels:]:
        unused.set_axis_off()

    handles: list[Line2D] = [
        Line2D([], [], color="0.45", linestyle=":", linewidth=1.2),
        *(Line2D([], [], alpha=0.9, **_style(index, linestyle="-")) for index in range(len(curves))),
        Line2D([], [], color="0.3", linestyle="-"),
        Line2D([], [], color="0.3", linestyle="--", linewidth=1.0),
    ]
    _legend_below(figure, (handles, keys), columns=3)
    figure.suptitle(title, fontsize="medium")
    return _encode(figure)


def draw_privacy_utility(title: str, points: Sequence[UtilityPoint]) -> PlotImage:
    """Return one deployment's schemes as labelled points: mean leakage (x) against test accuracy (y).

    Points that coincide (to three decimals) are drawn once, labelled with every scheme
    they stand for; labels that would overlap are moved apart, so no label hides another.
    A scheme's colour and marker follow its position in ``points``, so passing the
    schemes in one order for every deployment keeps them recognisable across panels.

    Args:
        title: the panel's title, e.g. the deployment.
        points: at least one.

    >>> image = draw_privacy_utility("cross-device", [UtilityPoint("plain", 1.0, 0.91), UtilityPoint("dp", 0.1, 0.84)])
    >>> min(image.axes_widths) >= MIN_AXES_PIXELS
    True
    """
    merged: dict[tuple[float, float], list[str]] = {}
    for point in points:
        merged.setdefault((round(point.leakage, 3), round(point.test_accuracy, 3)), []).append(point.label)
    accuracies = [accuracy for _, accuracy in merged]
    low, high = min(accuracies), max(accuracies)
    margin = max(0.05 * (high - low), 0.02)
    bottom, top = max(low - 3 * margin, -0.02), min(high + 3 * margin, 1.02)
    # One text line's height in data units, from the axes' height of roughly 190 points.
    line = (top - bottom) * 11.5 / 190.0
    figure = _figure(columns=1, rows=1, legend_lines=0)
    axes = figure.add_subplot()
    placed: list[tuple[bool, float, float]] = []  # per label: is it right of its point, its x, its top
    order = {point.label: index for index, point in enumerate(points)}
    for (leakage, accuracy), names in sorted(merged.items(), key=lambda item: item[0][::-1]):
        style = _style(order[names[0]], linestyle="none")  # a scheme keeps its colour in every deployment's panel
        style["markersize"] = 8.0  # points here are apart, or merged: no nesting needed
        axes.plot([leakage], [accuracy], **style)
        text = _wrap(", ".join(names), width=26)
        height = line * (text.count("\n") + 1)
        # Labels go right of points on the left half and left of the others, so they stay inside the axes;
        # a label that would cover one placed before it moves up, tied to its point by a thin line.
        is_right = leakage <= 0.6
        centre = accuracy
        for other_right, other_x, other_top in placed:
            if other_right == is_right and abs(other_x - leakage) < 0.5 and other_top > centre - height / 2:
                centre = other_top + height / 2
        placed.append((is_right, leakage, centre + height / 2))
        moved = abs(centre - accuracy) > line / 2
        axes.annotate(
            text, (leakage, accuracy), xytext=(leakage + (0.04 if is_right else -0.04), centre), textcoords="data",
            ha="left" if is_right else "right", va="center", fontsize="small", color=style["color"],
            arrowprops={"arrowstyle": "-", "color": style["color"], "linewidth": 0.6} if moved else None,
        )
    axes.set_xlim(-0.08, 1.08)
    axes.set_ylim(bottom, max(top, *(label_top + line / 2 for _, _, label_top in placed)))
    axes.set_xlabel("mean leakage (0 = as MPC, 1 = in the clear)")
    axes.set_ylabel("test accuracy of the released model")
    axes.set_title(title, fontsize="medium")
    axes.grid(alpha=0.3)
    return _encode(figure)


def draw_reconstruction_grid(
    originals: np.ndarray[tuple[int, ...], np.dtype[np.float64]],
    reconstructions: np.ndarray[tuple[int, ...], np.dtype[np.float64]],
    *,
    value_range: tuple[float, float],
) -> GridImage:
    """Return the grid of originals (top rows) above their reconstructions (bottom rows), pixel for pixel.

    The layout is :func:`~leakage.metrics.save_reconstruction_grid`'s, so reports and
    notebooks draw reconstructions the same way. Images are enlarged by a whole factor
    (nearest neighbour, so every original pixel stays a sharp square) until each is at
    least :data:`MIN_TILE_PIXELS` wide: an 8 x 8 digit becomes 96 x 96 pixels in the PNG
    itself, not only on screen.

    Args:
        originals: ``[B, C, H, W]`` raw images, ``C`` 1 or 3.
        reconstructions: the attack's estimates, same shape, in the originals' order.
        value_range: ``(low, high)`` of raw pixel values; values outside are clamped.

    Raises:
        ConfigError: the arrays are not images of one shape, hold NaN or Inf, or the range is invalid.

    >>> images = np.zeros((1, 1, 8, 8))
    >>> grid = draw_reconstruction_grid(images, images, value_range=(0.0, 1.0))
    >>> grid.tile_width, grid.width, grid.height
    (96, 100, 198)
    """
    # Anything but [B, C, H, W] is rejected, with the reason, by encode_reconstruction_grid.
    width = originals.shape[-1] if originals.ndim == 4 else 1
    upscale = max(1, math.ceil(MIN_TILE_PIXELS / max(width, 1)))
    png = encode_reconstruction_grid(
        torch.from_numpy(originals), torch.from_numpy(reconstructions), value_range=value_range, upscale=upscale
    )
    with Image.open(io.BytesIO(png)) as image:
        pixels_wide, pixels_high = image.size
    return GridImage(png, pixels_wide, pixels_high, tile_width=width * upscale)


def _figure(*, columns: int, rows: int, legend_lines: int) -> Figure:
    """Return an empty figure with room for ``rows x columns`` panels and a legend of ``legend_lines`` below."""
    height = _PANEL_HEIGHT * rows + _LEGEND_LINE_HEIGHT * legend_lines + (0.25 if legend_lines else 0.0)
    figure = Figure(figsize=(_PANEL_WIDTH * columns + 0.4, height), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _legend_lines(labels: Sequence[str], *, columns: int) -> int:
    """Return how many text lines a legend of ``labels`` in ``columns`` columns needs (wrapped labels count more)."""
    heights = [label.count("\n") + 1 for label in labels]
    per_column = math.ceil(len(heights) / columns)
    column_heights = [sum(heights[start : start + per_column]) for start in range(0, len(heights), per_column)]
    return max(column_heights, default=0)


def _legend_below(figure: Figure, entries: tuple[Sequence[Artist], Sequence[str]], *, columns: int) -> None:
    handles, labels = entries
    figure.legend(
        handles, labels, loc="outside lower center", ncols=min(columns, max(len(labels), 1)), frameon=False,
        fontsize="small",
    )


class _Style(TypedDict):
    color: str
    marker: str
    markersize: float
    linestyle: _LineStyle


def _style(index: int, *, linestyle: _LineStyle | None = None) -> _Style:
    """Return the colour, marker and line style of the ``index``-th curve: distinct for the first 40 or so."""
    return {
        "color": _COLOURS[index % len(_COLOURS)],
        "marker": _MARKERS[index % len(_MARKERS)],
        "markersize": max(_LARGEST_MARKER - _MARKER_STEP * index, _SMALLEST_MARKER),
        "linestyle": linestyle or _LINESTYLES[(index // len(_COLOURS)) % len(_LINESTYLES)],
    }


def _client_axis(axes: Axes, counts: Sequence[int]) -> None:
    """Put ``axes``' x axis on a log scale with a tick at exactly each swept client count."""
    axes.set_xscale("log")
    axes.set_xlim(counts[0] / 1.3, counts[-1] * 1.3)
    axes.xaxis.set_major_locator(FixedLocator(list(counts)))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([str(count) for count in counts])
    axes.set_xlabel("number of clients (log scale)")
    axes.grid(alpha=0.3)


def _wrap(label: str, *, width: int = _LEGEND_WRAP) -> str:
    return textwrap.fill(label, width=width, break_long_words=False, break_on_hyphens=False)


def _encode(figure: Figure) -> PlotImage:
    """Encode ``figure`` as PNG and read each axes box from the layout that drew those pixels."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
    png = buffer.getvalue()
    with Image.open(io.BytesIO(png)) as image:
        pixels_wide, pixels_high = image.size
    # The layout engine placed every axes while saving; its box is kept in figure fractions.
    axes_widths = tuple(round(axes.get_position().width * pixels_wide) for axes in figure.axes if axes.axison)
    return PlotImage(png, pixels_wide, pixels_high, axes_widths)
