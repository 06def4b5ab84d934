"""Labelled 32x32 patches cut from the two photos that ship inside scikit-learn (``load_sample_images``).

Four classes: the top and bottom halves of ``china.jpg`` (sky and roof against the
temple and trees) and of ``flower.jpg``. Patch corners are drawn with a seeded
generator, so the same seed always cuts the same patches; the image folder and the
pre-training data use different seeds.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_sample_images

CLASSES = ("china_bottom", "china_top", "flower_bottom", "flower_top")
SIZE = 32


def cut_patches(per_class: int, seed: int) -> dict[str, list[np.ndarray]]:
    """``per_class`` uint8 RGB patches ``[32, 32, 3]`` per class name."""
    rng = np.random.default_rng(seed)
    photos = dict(zip(("china", "flower"), load_sample_images().images, strict=True))
    patches: dict[str, list[np.ndarray]] = {}
    for name in CLASSES:
        photo_name, half = name.split("_")
        photo = photos[photo_name]
        height, width = photo.shape[:2]
        rows = (0, height // 2 - SIZE) if half == "top" else (height // 2, height - SIZE)
        patches[name] = [
            photo[top : top + SIZE, left : left + SIZE].copy()
            for top, left in zip(
                rng.integers(rows[0], rows[1], per_class), rng.integers(0, width - SIZE, per_class), strict=True
            )
        ]
    return patches
