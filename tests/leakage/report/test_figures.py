"""Tests for the report's figures: each PNG is as large as it says, and its axes and tiles stay legible."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from leakage.report import (
    MIN_AXES_PIXELS,
    MIN_TILE_PIXELS,
    PlotImage,
    RocCurve,
    SweepSeries,
    UtilityPoint,
    draw_privacy_utility,
    draw_reconstruction_grid,
    draw_roc_curves,
    draw_sweep,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SWEPT_CLIENTS = [2, 3, 5, 10, 20, 50, 100]


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("L"))


def _assert_sizes(image: PlotImage, axes: int) -> None:
    """The PNG has the declared size, and each of its ``axes`` axes boxes is wide enough to read."""
    assert image.png.startswith(PNG_SIGNATURE)
    assert _pixels(image.png).shape == (image.height, image.width)
    assert len(image.axes_widths) == axes
    assert min(image.axes_widths) >= MIN_AXES_PIXELS
    assert max(image.axes_widths) < image.width


def _frame_width(png: bytes) -> int:
    """Return the distance between the outermost long dark vertical lines: a single axes' left and right spines."""
    dark = _pixels(png) < 60
    columns = np.flatnonzero(dark.sum(axis=0) > 150)
    return int(columns[-1] - columns[0])


def _roc(label: str, rate: float) -> RocCurve:
    return RocCurve(label, [0.0, 0.0, rate, 1.0], [0.0, 0.4, 0.9, 1.0])


def test_roc_axes_width_is_the_one_drawn_in_the_png() -> None:
    image = draw_roc_curves("cross-device", [_roc("dp: server (AUC 0.81)", 0.2)], false_positive_floor=1 / 64)

    _assert_sizes(image, axes=1)
    assert abs(_frame_width(image.png) - image.axes_widths[0]) <= 2


def test_roc_draws_false_positive_rate_zero_at_the_floor_without_warnings() -> None:
    perfect = RocCurve("plain: server (AUC 1.00)", [0.0, 0.0, 1.0], [0.0, 1.0, 1.0])
    chance = RocCurve("mpc: public (AUC 0.50)", [0.0, 1.0], [0.0, 1.0])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when a log axis is handed zeros
        image = draw_roc_curves("cross-organisation", [perfect, chance], false_positive_floor=1 / 16)

    _assert_sizes(image, axes=1)


def test_many_long_roc_labels_grow_the_legend_downwards_not_into_the_axes() -> None:
    one = draw_roc_curves("site", [_roc("plain: server", 0.1)], false_positive_floor=1 / 64)
    labels = [f"scheme-{index}: server, participant, eavesdropper, public (AUC 0.{index:02d})" for index in range(24)]
    many = draw_roc_curves(
        "site", [_roc(label, 0.05 + 0.03 * index) for index, label in enumerate(labels)], false_positive_floor=1 / 64
    )

    _assert_sizes(many, axes=1)
    assert many.width == one.width and many.height > one.height
    assert many.axes_widths == one.axes_widths


def test_sweep_has_a_leakage_panel_and_one_per_metric() -> None:
    leakage = [1.0, 0.6, 0.4, 0.2, 0.1, 0.05, 0.02]
    cosine = SweepSeries("server (aggregate)", "update_cosine", SWEPT_CLIENTS, leakage,
                         [0.37 + 0.63 * value for value in leakage], [0.37] * len(leakage))
    psnr = SweepSeries("server (idlg)", "psnr", SWEPT_CLIENTS, leakage,
                       [12 + 30 * value for value in leakage], [12.0] * len(leakage))

    one_metric = draw_sweep("secagg sweep", [cosine], hiding_leakage=0.25)
    two_metrics = draw_sweep("secagg sweep", [cosine, psnr], hiding_leakage=0.25)

    _assert_sizes(one_metric, axes=2)
    _assert_sizes(two_metrics, axes=3)  # two to a row: the third panel starts a second row
    assert two_metrics.width == one_metric.width and two_metrics.height > one_metric.height


def test_a_sweep_of_one_size_still_draws() -> None:
    single = SweepSeries("participant (round_difference)", "update_cosine", [2], [1.0], [1.0], [0.37])

    _assert_sizes(draw_sweep("two hospitals", [single], hiding_leakage=0.25), axes=2)


def test_privacy_utility_keeps_its_axes_wide_with_coinciding_and_crowded_points() -> None:
    points = [
        UtilityPoint("plain", 1.0, 0.91), UtilityPoint("secagg", 0.0, 0.91), UtilityPoint("secagg+", 0.0, 0.91),
        UtilityPoint("he", 0.02, 0.905), UtilityPoint("dp", 1.0, 0.62), UtilityPoint("mpc", 0.0, 0.90),
    ]

    image = draw_privacy_utility("cross-device", points)

    _assert_sizes(image, axes=1)
    assert abs(_frame_width(image.png) - image.axes_widths[0]) <= 2


@pytest.mark.parametrize(("side", "scale"), [(8, 12), (28, 4), (32, 3), (100, 1)])
def test_reconstructions_are_enlarged_to_at_least_96_pixels_by_nearest_neighbour(side: int, scale: int) -> None:
    rng = np.random.default_rng(side)
    originals = rng.random((2, 1, side, side))

    grid = draw_reconstruction_grid(originals, originals, value_range=(0.0, 1.0))

    assert grid.tile_width == side * scale >= MIN_TILE_PIXELS
    pixels = _pixels(grid.png)
    assert pixels.shape == (grid.height, grid.width) == (2 * (side * scale + 2) + 2, 2 * (side * scale + 2) + 2)
    tile = pixels[2 : 2 + side * scale, 2 : 2 + side * scale]
    # Nearest neighbour: every original pixel is a flat scale x scale square holding its own value.
    np.testing.assert_array_equal(tile, np.kron(tile[::scale, ::scale], np.ones((scale, scale), dtype=np.uint8)))
    np.testing.assert_allclose(tile[::scale, ::scale] / 255.0, originals[0, 0], atol=1 / 255)
