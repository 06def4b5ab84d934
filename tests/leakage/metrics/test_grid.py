"""Tests for the PNG grid of originals above their reconstructions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from leakage.errors import ConfigError
from leakage.metrics import GRID_PADDING, save_reconstruction_grid
from leakage.metrics.grid import encode_reconstruction_grid


def _read(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.mode, np.asarray(image)


def test_grayscale_grid_is_a_valid_png_of_the_expected_size(tmp_path: Path, generator: torch.Generator) -> None:
    originals = torch.rand(5, 1, 8, 8, generator=generator)
    reconstructions = torch.rand(5, 1, 8, 8, generator=generator)

    written = save_reconstruction_grid(
        originals, reconstructions, tmp_path / "grid.png", value_range=(0.0, 1.0), nrow=3, upscale=2
    )

    mode, pixels = _read(written)
    tile = 2 * 8 + GRID_PADDING
    assert written == tmp_path / "grid.png"
    assert mode == "L"
    # 3 columns; 2 rows of originals (3 + 2 tiles) above 2 rows of reconstructions.
    assert pixels.shape == (4 * tile + GRID_PADDING, 3 * tile + GRID_PADDING)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_rgb_grid_places_scaled_originals_above_clamped_reconstructions(tmp_path: Path) -> None:
    originals = torch.full((2, 3, 4, 4), 5.0)
    originals[1] = 0.0
    reconstructions = torch.full((2, 3, 4, 4), 99.0)  # above the range: drawn at its top
    pad = GRID_PADDING

    written = save_reconstruction_grid(originals, reconstructions, tmp_path / "rgb.png", value_range=(0.0, 10.0))

    mode, pixels = _read(written)
    assert mode == "RGB" and pixels.shape == (2 * (4 + pad) + pad, 2 * (4 + pad) + pad, 3)
    first_original = pixels[pad : pad + 4, pad : pad + 4]
    second_original = pixels[pad : pad + 4, 2 * pad + 4 : 2 * pad + 8]
    first_reconstruction = pixels[2 * pad + 4 : 2 * pad + 8, pad : pad + 4]
    assert (first_original == 128).all() and (second_original == 0).all() and (first_reconstruction == 255).all()
    assert (pixels[:pad] == 255).all()


def test_match_first_puts_each_reconstruction_under_its_original(tmp_path: Path) -> None:
    originals = torch.tensor([0.0, 1.0]).reshape(2, 1, 1, 1).expand(2, 1, 3, 3)
    swapped = originals.flip(0)

    as_given = save_reconstruction_grid(originals, swapped, tmp_path / "given.png", value_range=(0.0, 1.0))
    matched = save_reconstruction_grid(
        originals, swapped, tmp_path / "matched.png", value_range=(0.0, 1.0), match_first=True
    )

    _, given_pixels = _read(as_given)
    _, matched_pixels = _read(matched)
    top, bottom = slice(GRID_PADDING, GRID_PADDING + 3), slice(2 * GRID_PADDING + 3, 2 * GRID_PADDING + 6)
    assert (matched_pixels[bottom] == matched_pixels[top]).all()
    assert not (given_pixels[bottom] == given_pixels[top]).all()


def test_saving_again_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "grid.png"
    save_reconstruction_grid(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), target, value_range=(0.0, 1.0))

    save_reconstruction_grid(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4), target, value_range=(0.0, 1.0))

    _, pixels = _read(target)
    assert (pixels == 255).all()
    assert [p.name for p in target.parent.iterdir()] == ["grid.png"]


@pytest.mark.parametrize(
    ("shape", "options", "message"),
    [
        ((4, 30), {}, "tabular rows cannot be drawn as images"),
        ((4, 2, 8, 8), {}, r"1 \(grayscale\) or 3 \(RGB\) channels, got 2"),
        ((4, 1, 8, 8), {"value_range": (1.0, 0.0)}, "value_range must be finite"),
        ((4, 1, 8, 8), {"nrow": 0}, "nrow must be an integer >= 1"),
        ((4, 1, 8, 8), {"upscale": 0}, "upscale must be an integer >= 1"),
    ],
)
def test_grid_rejects_what_it_cannot_draw(
    tmp_path: Path, shape: tuple[int, ...], options: dict[str, object], message: str
) -> None:
    images = torch.zeros(shape)
    arguments: dict[str, object] = {"value_range": (0.0, 1.0), **options}

    with pytest.raises(ConfigError, match=message):
        save_reconstruction_grid(images, images, tmp_path / "grid.png", **arguments)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_grid_rejects_a_path_that_is_not_png(tmp_path: Path) -> None:
    images = torch.zeros(1, 1, 4, 4)

    with pytest.raises(ConfigError, match="path must end in .png"):
        save_reconstruction_grid(images, images, tmp_path / "grid.jpg", value_range=(0.0, 1.0))


def test_encoded_grid_is_the_saved_file_byte_for_byte(tmp_path: Path, generator: torch.Generator) -> None:
    originals = torch.rand(3, 1, 8, 8, generator=generator)
    reconstructions = torch.rand(3, 1, 8, 8, generator=generator)
    options: dict[str, object] = {"value_range": (0.0, 1.0), "nrow": 2, "upscale": 12}

    png = encode_reconstruction_grid(originals, reconstructions, **options)  # type: ignore[arg-type]
    written = save_reconstruction_grid(originals, reconstructions, tmp_path / "grid.png", **options)  # type: ignore[arg-type]

    assert written.read_bytes() == png
    _, pixels = _read(written)
    # An 8 x 8 digit enlarged 12 times is 96 pixels wide: two columns, four rows of tiles.
    assert pixels.shape == (4 * (96 + GRID_PADDING) + GRID_PADDING, 2 * (96 + GRID_PADDING) + GRID_PADDING)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_failed_save_leaves_the_existing_grid_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "grid.png"
    target.write_bytes(b"previous grid")

    def crash(source: object, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_reconstruction_grid(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), target, value_range=(0.0, 1.0))

    assert target.read_bytes() == b"previous grid"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
