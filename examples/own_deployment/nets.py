"""A team's own model: a small convolutional network with batch normalisation (running statistics kept).

``leakage`` builds it through the import path ``nets:build`` named in ``spec.toml``; the
builder receives the dataset's ``input_shape`` and ``num_classes`` and the spec's
``model_options``, and its own initialisation is kept.
"""

from __future__ import annotations

from torch import nn


def build(input_shape: tuple[int, ...], num_classes: int, width: int = 16) -> nn.Module:
    """Two 3x3 convolutions with batch norm and ReLU, max and global average pooling, a linear head."""
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )
