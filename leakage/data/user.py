"""Datasets the user brings: tensors, a torch dataset, a folder of images or a CSV table.

Every source ends in `dataset_from_tensors`, which takes *raw* inputs and normalises
them with their own statistics, so a deployment's data enters the toolkit exactly as the
built-in datasets do. Two loaders are registered for configuration files: ``"folder"``
(one subfolder of PNG/JPEG images per class, :mod:`leakage.data.folder`) and ``"csv"``
(a table with a header row, :mod:`leakage.data.csv_table`). Bad input is refused with
one line that names the option and shows what was found, e.g. ``dataset_options.path:
missing value in row 2 (line 3), column 'age'``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from leakage.checks import require_bool, require_choice, require_optional_int
from leakage.data.base import Dataset
from leakage.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["dataset_from_tensors", "dataset_from_torch"]

DatasetKind = Literal["image", "tabular"]

_KINDS: tuple[str, ...] = ("image", "tabular")
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})
# PIL modes that convert to greyscale or RGB without losing meaning; 16-bit and float
# modes ("I;16", "I", "F") would be clipped to 8 bits, so they are refused instead.
_GREY_MODES = frozenset({"1", "L", "LA"})
_COLOUR_MODES = frozenset({"P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})


def _one_line(text: object) -> str:
    """Collapse whitespace, so a message quoting a library's error stays on one line."""
    return " ".join(str(text).split())


def _shape(tensor: Tensor) -> list[int]:
    return list(tensor.shape)


def dataset_from_tensors(
    inputs: Tensor,
    targets: Tensor,
    *,
    name: str = "tensors",
    num_classes: int | None = None,
    kind: DatasetKind | None = None,
    class_names: Sequence[str] = (),
    properties: Mapping[str, Tensor] | None = None,
    value_range: tuple[float, float] | None = None,
    normalise: bool = True,
) -> Dataset:
    """Return a `Dataset` holding raw ``inputs`` normalised with their own statistics.

    Args:
        inputs: raw values, images ``[N, C, H, W]`` or tabular rows ``[N, D]``; any real
            dtype (stored as float32, copied).
        targets: integer class indices ``[N]`` in ``[0, num_classes)``.
        name: the dataset's name in reports.
        num_classes: number of classes (>= 2); default ``len(class_names)`` when names
            are given, else ``max(targets) + 1``.
        kind: ``"image"`` (4-d inputs) or ``"tabular"`` (2-d); inferred from the rank.
        class_names: one name per class, or empty.
        properties: boolean tensors ``[N]`` marking a property that is not the label.
        value_range: ``(low, high)`` of raw inputs; default their min and max.
        normalise: subtract the mean and divide by the (population) standard deviation
            per channel (``mean``/``std`` shape ``[C, 1, 1]``) or per feature (``[D]``);
            a constant channel or feature keeps std 1. ``False`` stores the raw values
            with mean 0 and std 1.

    Raises:
        ConfigError: one line naming the argument and what it held.

    >>> data = dataset_from_tensors(torch.tensor([[1.0, 10.0], [3.0, 10.0]]), torch.tensor([0, 1]))
    >>> data.kind, data.inputs.tolist(), data.std.tolist(), data.value_range
    ('tabular', [[-1.0, 0.0], [1.0, 0.0]], [1.0, 1.0], (1.0, 10.0))
    """
    return _from_tensors(
        inputs,
        targets,
        name=name,
        num_classes=num_classes,
        kind=kind,
        class_names=class_names,
        properties=properties,
        value_range=value_range,
        normalise=normalise,
        label_at=lambda index: f"targets[{index}]",
    )


def _from_tensors(
    inputs: object,
    targets: object,
    *,
    name: object,
    num_classes: object,
    kind: object,
    class_names: object,
    properties: object,
    value_range: object,
    normalise: object,
    label_at: Callable[[int], str],
) -> Dataset:
    """Check every argument of `dataset_from_tensors`, then build; ``label_at(i)`` names target ``i`` in messages."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name must be a non-empty string, got {name!r}")
    raw = _check_inputs(inputs)
    resolved_kind = _check_kind(kind, raw)
    names = _check_class_names(class_names)
    labels, count = _check_targets(targets, len(raw), num_classes, len(names) or None, label_at)
    if names and len(names) != count:
        raise ConfigError(f"class_names must hold num_classes={count} names, got {len(names)}")
    flags = _check_properties(properties, len(raw))
    is_normalised = require_bool("normalise", normalise)
    low, high = float(raw.min()), float(raw.max())
    bounds = (low, high) if value_range is None else _check_value_range(value_range, low, high)
    if bounds[0] == bounds[1]:
        raise ConfigError(f"value_range cannot be inferred: every input is {low!r}; pass value_range=(low, high)")
    mean, std = _statistics(raw, resolved_kind) if is_normalised else _identity(raw)
    normalised = ((raw.double() - mean.double()) / std.double()).float() if is_normalised else raw
    return Dataset(
        name=name,
        inputs=normalised,
        targets=labels,
        num_classes=count,
        mean=mean,
        std=std,
        value_range=bounds,
        kind=resolved_kind,
        properties=flags,
        class_names=names,
    )


def _check_inputs(inputs: object) -> Tensor:
    """Return ``inputs`` as a fresh float32 tensor, or raise naming what is wrong."""
    if not isinstance(inputs, Tensor):
        raise ConfigError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}; wrap it in torch.as_tensor")
    if inputs.dtype == torch.bool or inputs.is_complex():
        raise ConfigError(f"inputs must hold real numbers, got dtype {inputs.dtype}")
    if inputs.dim() not in (2, 4):
        raise ConfigError(f"inputs must have shape [N, C, H, W] (images) or [N, D] (tabular), got {_shape(inputs)}")
    if inputs.shape[0] == 0 or inputs[0].numel() == 0:
        raise ConfigError(f"inputs must hold at least one non-empty sample, got shape {_shape(inputs)}")
    raw = inputs.detach().to(device="cpu", dtype=torch.float32, copy=True)
    if not bool(torch.isfinite(raw).all()):
        index = int((~torch.isfinite(raw)).flatten(1).any(dim=1).nonzero()[0, 0])
        raise ConfigError(f"inputs must be finite, got a NaN or infinity in sample {index}")
    return raw


def _check_kind(kind: object, raw: Tensor) -> DatasetKind:
    inferred: DatasetKind = "image" if raw.dim() == 4 else "tabular"
    if kind is None:
        return inferred
    chosen = require_choice("kind", kind, _KINDS)
    if chosen != inferred:
        wanted = "[N, C, H, W]" if chosen == "image" else "[N, D]"
        raise ConfigError(f"kind {chosen!r} needs inputs of shape {wanted}, got {_shape(raw)}")
    return inferred


def _check_class_names(class_names: object) -> tuple[str, ...]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ConfigError(f"class_names must be a sequence of strings, got {class_names!r}")
    if not all(isinstance(entry, str) for entry in class_names):
        raise ConfigError(f"class_names must be a sequence of strings, got {list(class_names)!r}")
    return tuple(class_names)


def _check_targets(
    targets: object,
    num_samples: int,
    num_classes: object,
    default_classes: int | None,
    label_at: Callable[[int], str],
) -> tuple[Tensor, int]:
    """Return the targets as a fresh int64 tensor and the number of classes."""
    if not isinstance(targets, Tensor):
        raise ConfigError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.dtype == torch.bool or targets.is_floating_point() or targets.is_complex():
        raise ConfigError(f"targets must be an integer tensor of class indices, got dtype {targets.dtype}")
    if targets.shape != (num_samples,):
        raise ConfigError(f"targets must have shape [{num_samples}] (one per input), got {_shape(targets)}")
    labels = targets.detach().to(device="cpu", dtype=torch.int64, copy=True)
    count = require_optional_int("num_classes", num_classes, minimum=2)
    negative = (labels < 0).nonzero()
    if len(negative):
        index = int(negative[0, 0])
        raise ConfigError(f"{label_at(index)} must be a class index >= 0, got {int(labels[index])}")
    if count is None and default_classes is not None:
        if default_classes < 2:
            raise ConfigError(f"class_names must name at least 2 classes, got {default_classes}")
        count = default_classes
    elif count is None:
        count = int(labels.max()) + 1
        if count < 2:
            raise ConfigError("num_classes must be >= 2, but the targets hold only class 0; pass num_classes")
    above = (labels >= count).nonzero()
    if len(above):
        index = int(above[0, 0])
        raise ConfigError(f"{label_at(index)} must be a class index in [0, {count}), got {int(labels[index])}")
    return labels, count


def _check_properties(properties: object, num_samples: int) -> dict[str, Tensor]:
    if properties is None:
        return {}
    if not isinstance(properties, Mapping):
        raise ConfigError(f"properties must map names to bool tensors, got {type(properties).__name__}")
    flags = {}
    for key, value in properties.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"properties keys must be non-empty strings, got {key!r}")
        if not isinstance(value, Tensor) or value.dtype != torch.bool or value.shape != (num_samples,):
            found = f"dtype {value.dtype}, shape {_shape(value)}" if isinstance(value, Tensor) else type(value).__name__
            raise ConfigError(f"properties[{key!r}] must be a bool tensor of shape [{num_samples}], got {found}")
        flags[key] = value.detach().to("cpu").clone()
    return flags


def _check_value_range(value_range: object, low: float, high: float) -> tuple[float, float]:
    """Return a given ``(low, high)`` that is finite, ordered and holds every input value."""
    bounds = tuple(value_range) if isinstance(value_range, (tuple, list)) else ()
    numbers = [float(b) for b in bounds if isinstance(b, Real) and not isinstance(b, bool)]
    if len(bounds) != 2 or len(numbers) != 2 or not all(map(math.isfinite, numbers)) or numbers[0] >= numbers[1]:
        raise ConfigError(f"value_range must be (low, high) with finite low < high, got {value_range!r}")
    if low < numbers[0] or high > numbers[1]:
        raise ConfigError(f"value_range {tuple(numbers)} must hold every input, but they span [{low!r}, {high!r}]")
    return numbers[0], numbers[1]


def _statistics(raw: Tensor, kind: DatasetKind) -> tuple[Tensor, Tensor]:
    """Return per-channel (``[C, 1, 1]``) or per-feature (``[D]``) mean and std, float32."""
    axes = (0, 2, 3) if kind == "image" else (0,)
    wide = raw.double()
    mean = wide.mean(dim=axes, keepdim=True)
    std = wide.std(dim=axes, unbiased=False, keepdim=True)
    # A constant channel would divide by zero (or by rounding noise): keep its exact
    # value as the mean and 1 as the std, so its normalised inputs are exactly 0.
    is_constant = wide.amax(dim=axes, keepdim=True) == wide.amin(dim=axes, keepdim=True)
    mean = torch.where(is_constant, wide.amin(dim=axes, keepdim=True), mean)
    std = torch.where(is_constant, torch.ones_like(std), std)
    return mean[0].float(), std[0].float()


def _identity(raw: Tensor) -> tuple[Tensor, Tensor]:
    """Return a mean of 0 and a std of 1 shaped like `_statistics` would."""
    shape = (raw.shape[1], 1, 1) if raw.dim() == 4 else (raw.shape[1],)
    return torch.zeros(shape), torch.ones(shape)


def dataset_from_torch(
    torch_dataset: torch.utils.data.Dataset[Any],
    *,
    name: str = "torch",
    num_classes: int | None = None,
    limit: int | None = None,
    kind: DatasetKind | None = None,
    class_names: Sequence[str] = (),
    properties: Mapping[str, Tensor] | None = None,
    value_range: tuple[float, float] | None = None,
    normalise: bool = True,
) -> Dataset:
    """Return the items of a map-style torch dataset as a `Dataset` (see `dataset_from_tensors`).

    Each item must be ``(input, label)``: the input a tensor ``[C, H, W]`` or ``[D]`` of
    raw values, or a PIL image (converted to greyscale or RGB and scaled to ``[0, 1]``);
    the label an integer. Items ``0 .. limit - 1`` are read in order. When
    ``class_names`` is not given and the dataset has a ``classes`` list (torchvision's
    datasets do), those names are used and ``num_classes`` defaults to their number.

    Raises:
        ConfigError: one line naming the item and what it held, or an invalid argument.

    >>> pairs = torch.utils.data.TensorDataset(torch.tensor([[0.0], [2.0]]), torch.tensor([1, 0]))
    >>> dataset_from_torch(pairs).inputs.flatten().tolist()
    [-1.0, 1.0]
    """
    if not hasattr(torch_dataset, "__len__") or not hasattr(torch_dataset, "__getitem__"):
        raise ConfigError(
            f"torch_dataset must be map-style (with __len__ and __getitem__), got {type(torch_dataset).__name__}"
        )
    count = require_optional_int("limit", limit, minimum=1)
    size = len(torch_dataset)
    if size == 0:
        raise ConfigError("torch_dataset must hold at least one item, got an empty dataset")
    inputs: list[Tensor] = []
    labels: list[int] = []
    for index in range(size if count is None else min(count, size)):
        sample, label = _split_item(torch_dataset[index], index)
        if inputs and sample.shape != inputs[0].shape:
            raise ConfigError(
                f"torch_dataset[{index}] has input shape {_shape(sample)}, but torch_dataset[0] has {_shape(inputs[0])}"
            )
        inputs.append(sample)
        labels.append(label)
    known = getattr(torch_dataset, "classes", None)
    if not class_names and isinstance(known, (list, tuple)) and known and all(isinstance(c, str) for c in known):
        class_names = tuple(known)
    return _from_tensors(
        torch.stack(inputs),
        torch.tensor(labels, dtype=torch.int64),
        name=name,
        num_classes=num_classes,
        kind=kind,
        class_names=class_names,
        properties=properties,
        value_range=value_range,
        normalise=normalise,
        label_at=lambda index: f"the label of torch_dataset[{index}]",
    )


def _split_item(item: object, index: int) -> tuple[Tensor, int]:
    """Return one item's input as a float tensor and its label as an int."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise ConfigError(f"torch_dataset[{index}] must be a pair (input, label), got {type(item).__name__}")
    sample, label = item
    if isinstance(sample, Tensor):
        tensor = sample.detach().to(device="cpu", dtype=torch.float32)
    else:
        tensor = _pil_to_float(sample, index)
    if tensor.dim() not in (1, 3):
        raise ConfigError(
            f"torch_dataset[{index}] input must be a tensor [C, H, W] or [D] or a PIL image, got shape {_shape(tensor)}"
        )
    if isinstance(label, Tensor) and label.numel() == 1 and not label.is_floating_point() and label.dtype != torch.bool:
        return tensor, int(label.item())
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        return tensor, int(label)
    raise ConfigError(f"the label of torch_dataset[{index}] must be an integer, got {label!r}")


def _pil_to_float(sample: object, index: int) -> Tensor:
    """Return a PIL image as float32 ``[C, H, W]`` in ``[0, 1]``; refuse anything else."""
    from PIL import Image

    if not isinstance(sample, Image.Image):
        raise ConfigError(f"torch_dataset[{index}] input must be a tensor or a PIL image, got {type(sample).__name__}")
    if sample.mode not in _GREY_MODES | _COLOUR_MODES:
        raise ConfigError(
            f"torch_dataset[{index}] is a PIL image in mode {sample.mode!r}, which cannot become 8-bit "
            "greyscale or RGB without clipping; convert it to a tensor with a transform"
        )
    return _image_to_float(sample, "L" if sample.mode in _GREY_MODES else "RGB")


def _image_to_float(image: Image.Image, mode: str) -> Tensor:
    """Return ``image`` converted to ``mode`` ("L" or "RGB") as float32 ``[C, H, W]`` in ``[0, 1]``."""
    from torchvision.transforms.functional import pil_to_tensor  # imported on use: it takes a second

    pixels: Tensor = pil_to_tensor(image.convert(mode))
    return pixels.float().div_(255.0)


def _require_path(path: object, what: str) -> Path:
    """Return ``dataset_options.path`` as an existing Path, or raise naming what is wrong."""
    if path is None:
        raise ConfigError(f"dataset_options.path is required: {what}")
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigError(f"dataset_options.path must be a path, got {path!r}")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise ConfigError(f"dataset_options.path does not exist: {resolved}")
    return resolved
