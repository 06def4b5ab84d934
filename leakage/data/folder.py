"""The ``"folder"`` dataset: an image folder with one subfolder of PNG/JPEG images per class.

Images are resized to ``dataset_options.size`` and scaled to [0, 1], then normalised with
their own statistics by :func:`~leakage.data.user.dataset_from_tensors`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from leakage.checks import require_choice, require_optional_int
from leakage.data.base import DATASETS, Dataset
from leakage.data.user import (
    _COLOUR_MODES,
    _GREY_MODES,
    _IMAGE_SUFFIXES,
    _image_to_float,
    _one_line,
    _require_path,
    dataset_from_tensors,
)
from leakage.errors import ConfigError

__all__ = ["load_folder"]


def _require_size(size: object) -> tuple[int, int]:
    if size is None:
        raise ConfigError("dataset_options.size is required: [height, width] every image is resized to")
    sides = list(size) if isinstance(size, (list, tuple)) else []
    if len(sides) != 2 or not all(isinstance(side, int) and not isinstance(side, bool) and side >= 1 for side in sides):
        raise ConfigError(f"dataset_options.size must be [height, width], two integers >= 1, got {size!r}")
    return int(sides[0]), int(sides[1])


@DATASETS.register("folder")
def load_folder(
    *,
    path: str | os.PathLike[str] | None = None,
    size: Sequence[int] | None = None,
    channels: int = 3,
    limit_per_class: int | None = None,
) -> Dataset:
    """Return the images of a folder with one subfolder per class, resized to ``size``.

    Class subfolders are taken in sorted name order (class ``i`` is the ``i``-th name);
    in each, the files ending ``.png``, ``.jpg`` or ``.jpeg`` (any case) are read in
    sorted order, converted to RGB (or greyscale
    for ``channels=1``), resized bilinearly to ``size``, scaled to ``[0, 1]`` and
    normalised per channel with their own statistics. ``value_range`` is ``(0, 1)``.
    Other files, and names starting with ``.`` (hidden folders, macOS ``._`` files),
    are skipped; subfolders of a class folder are not searched.

    Args:
        path: the folder.
        size: ``[height, width]`` in pixels.
        channels: 3 (RGB) or 1 (greyscale).
        limit_per_class: read at most this many images per class (the first in order).

    Raises:
        ConfigError: an option is missing or invalid, the folder has fewer than two
            class subfolders or a class without images, or an image cannot be read.
    """
    folder = _require_path(path, "a folder with one subfolder of images per class")
    height, width = _require_size(size)
    depth = require_choice("dataset_options.channels", channels, (1, 3))
    limit = require_optional_int("dataset_options.limit_per_class", limit_per_class, minimum=1)
    if not folder.is_dir():
        raise ConfigError(f"dataset_options.path must be a folder with one subfolder per class, got a file: {folder}")
    classes = sorted(child.name for child in folder.iterdir() if child.is_dir() and not child.name.startswith("."))
    if not classes:
        raise ConfigError(f"dataset_options.path has no class subfolders (one per class, holding its images): {folder}")
    if len(classes) < 2:
        raise ConfigError(
            f"dataset_options.path needs at least 2 class subfolders, found only {classes[0]!r}: {folder}"
        )
    files = [
        sorted(
            file
            for file in (folder / name).iterdir()
            if file.is_file() and not file.name.startswith(".") and file.suffix.lower() in _IMAGE_SUFFIXES
        )
        for name in classes
    ]
    if not any(files):
        raise ConfigError(f"dataset_options.path holds no .png, .jpg or .jpeg images in its class subfolders: {folder}")
    for name, paths in zip(classes, files, strict=True):
        if not paths:
            raise ConfigError(f"dataset_options.path: class subfolder {name!r} holds no .png, .jpg or .jpeg images")
    images: list[Tensor] = []
    labels: list[int] = []
    for label, paths in enumerate(files):
        for file in paths[:limit]:
            images.append(_read_image(file, folder, "L" if depth == 1 else "RGB", (width, height)))
            labels.append(label)
    return dataset_from_tensors(
        torch.stack(images),
        torch.tensor(labels, dtype=torch.int64),
        name="folder",
        num_classes=len(classes),
        kind="image",
        class_names=classes,
        value_range=(0.0, 1.0),
    )


def _read_image(file: Path, folder: Path, mode: str, size: tuple[int, int]) -> Tensor:
    """Return one image file converted to ``mode``, resized to ``size`` (width, height), as float ``[C, H, W]``."""
    from PIL import Image

    relative = file.relative_to(folder).as_posix()
    try:
        with Image.open(file) as image:
            image.load()
            pixel_mode = image.mode
            is_8_bit = pixel_mode in _GREY_MODES | _COLOUR_MODES
            resized = image.convert(mode).resize(size, Image.Resampling.BILINEAR) if is_8_bit else None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        reason = _one_line(error).replace(str(file), relative)
        raise ConfigError(f"dataset_options.path: cannot read image {relative}: {reason}") from None
    if resized is None:
        raise ConfigError(
            f"dataset_options.path: image {relative} has pixel mode {pixel_mode!r} (16-bit or float), "
            "which would be clipped to 8 bits; save it as 8-bit"
        )
    return _image_to_float(resized, mode)
