"""Datasets that ship inside installed packages, so every experiment runs offline.

``digits``, ``breast_cancer`` and ``sample_patches`` read files bundled with
scikit-learn; ``binary_features`` is generated from a seed. Each loader returns a
fresh `Dataset` (the raw arrays are cached read-only, the tensors are new copies),
and each carries one boolean property that is not the main label, for property
inference.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray

from leakage.checks import require_int
from leakage.data.base import DATASETS, Dataset

__all__ = ["load_binary_features", "load_breast_cancer", "load_digits", "load_sample_patches"]

_ArrayT = TypeVar("_ArrayT", bound=np.ndarray[Any, Any])

_PATCH_SIZE = 32
_PATCH_STRIDE = 16  # half a patch: neighbours overlap by half, 25 x 39 patches per photo
_PHOTOS = ("china", "flower")
_QUINTILES = ("darkest", "darker", "middle", "brighter", "brightest")


def _read_only(array: _ArrayT) -> _ArrayT:
    """Mark a cached array read-only, so no caller can change what later calls get."""
    array.setflags(write=False)
    return array


def _above_median(values: NDArray[np.floating]) -> torch.Tensor:
    """Return a bool tensor marking values strictly above their median."""
    return torch.from_numpy(values > np.median(values))


def _image_dataset(
    name: str,
    raw: NDArray[np.float32],
    targets: NDArray[np.integer],
    properties: dict[str, torch.Tensor],
    class_names: tuple[str, ...],
) -> Dataset:
    """Normalise raw images ``[N, C, H, W]`` in ``[0, 1]`` with their own per-channel statistics."""
    inputs = torch.tensor(raw, dtype=torch.float32)
    mean = inputs.mean(dim=(0, 2, 3)).reshape(-1, 1, 1)
    std = inputs.std(dim=(0, 2, 3), unbiased=False).reshape(-1, 1, 1)
    return Dataset(
        name=name,
        inputs=(inputs - mean) / std,
        targets=torch.tensor(targets, dtype=torch.int64),
        num_classes=len(class_names),
        mean=mean,
        std=std,
        value_range=(0.0, 1.0),
        kind="image",
        properties=properties,
        class_names=class_names,
    )


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    from sklearn import datasets as sklearn_datasets  # imported on use: it takes a second

    bunch = sklearn_datasets.load_digits()
    raw = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    return _read_only(raw), _read_only(bunch.target.astype(np.int64))


@DATASETS.register("digits")
def load_digits() -> Dataset:
    """Return scikit-learn's 8x8 handwritten digits: 1797 images ``[1, 8, 8]``, 10 classes.

    Raw pixels (0..16 in the source) are scaled to ``[0, 1]``, then normalised with the
    mean and standard deviation of all pixels (``mean``/``std`` shape ``[1, 1, 1]``).

    Property ``"high_ink"``: the image's total ink (sum of raw pixels) is above the
    median over the dataset.

    >>> data = load_digits()
    >>> data.input_shape, data.num_classes, len(data)
    ((1, 8, 8), 10, 1797)
    """
    raw, targets = _digits_arrays()
    ink = raw.sum(axis=(1, 2, 3))
    return _image_dataset(
        "digits",
        raw,
        targets,
        properties={"high_ink": _above_median(ink)},
        class_names=tuple(str(digit) for digit in range(10)),
    )


@functools.lru_cache(maxsize=1)
def _breast_cancer_arrays() -> tuple[NDArray[np.float64], NDArray[np.int64], tuple[str, ...], int]:
    from sklearn import datasets as sklearn_datasets  # imported on use: it takes a second

    bunch = sklearn_datasets.load_breast_cancer()
    texture_column = list(bunch.feature_names).index("mean texture")
    class_names = tuple(str(label) for label in bunch.target_names)
    return (
        _read_only(bunch.data.astype(np.float64)),
        _read_only(bunch.target.astype(np.int64)),
        class_names,
        texture_column,
    )


@DATASETS.register("breast_cancer")
def load_breast_cancer() -> Dataset:
    """Return the Wisconsin breast cancer table: 569 rows ``[30]``, 2 classes.

    Classes follow scikit-learn: 0 ``"malignant"``, 1 ``"benign"``. Each feature is
    standardised with its own mean and (population) standard deviation, so ``mean``
    and ``std`` have shape ``[30]``. Features live on very different scales, so
    ``value_range`` is loose: the smallest and largest raw value over all features
    (0.0 and 4254.0).

    Property ``"high_texture"``: the feature ``"mean texture"`` (standard deviation of
    grey levels in the cell image) is above its median. It correlates with the label
    but is not it.

    >>> data = load_breast_cancer()
    >>> data.input_shape, data.class_names
    ((30,), ('malignant', 'benign'))
    """
    raw, targets, class_names, texture_column = _breast_cancer_arrays()
    mean = raw.mean(axis=0)
    std = raw.std(axis=0)
    return Dataset(
        name="breast_cancer",
        inputs=torch.tensor((raw - mean) / std, dtype=torch.float32),
        targets=torch.tensor(targets),
        num_classes=len(class_names),
        mean=torch.tensor(mean, dtype=torch.float32),
        std=torch.tensor(std, dtype=torch.float32),
        value_range=(float(raw.min()), float(raw.max())),
        kind="tabular",
        properties={"high_texture": _above_median(raw[:, texture_column])},
        class_names=class_names,
    )


@functools.lru_cache(maxsize=1)
def _sample_patch_arrays() -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    from sklearn import datasets as sklearn_datasets  # imported on use: it takes a second

    bunch = sklearn_datasets.load_sample_images()
    names = [path.replace("\\", "/").rsplit("/", 1)[-1] for path in bunch.filenames]
    patches_per_photo = []
    labels_per_photo = []
    for photo_index, photo in enumerate(_PHOTOS):
        image = bunch.images[names.index(f"{photo}.jpg")]
        channels_first = (image.astype(np.float32) / 255.0).transpose(2, 0, 1)
        windows = np.lib.stride_tricks.sliding_window_view(
            channels_first, (_PATCH_SIZE, _PATCH_SIZE), axis=(1, 2)
        )[:, ::_PATCH_STRIDE, ::_PATCH_STRIDE]
        # [C, rows, cols, h, w] -> [rows * cols, C, h, w], row-major from the top-left corner
        patches = windows.transpose(1, 2, 0, 3, 4).reshape(-1, 3, _PATCH_SIZE, _PATCH_SIZE)
        brightness = patches.mean(axis=(1, 2, 3))
        # Quintiles by rank (stable for ties) so that each class holds exactly a fifth.
        ranks = np.empty(len(patches), dtype=np.int64)
        ranks[np.argsort(brightness, kind="stable")] = np.arange(len(patches))
        quintiles = ranks * len(_QUINTILES) // len(patches)
        patches_per_photo.append(patches)
        labels_per_photo.append(len(_QUINTILES) * photo_index + quintiles)
    raw = np.ascontiguousarray(np.concatenate(patches_per_photo))
    return _read_only(raw), _read_only(np.concatenate(labels_per_photo))


@DATASETS.register("sample_patches")
def load_sample_patches() -> Dataset:
    """Return 32x32 RGB patches of scikit-learn's two sample photos: 1950 images ``[3, 32, 32]``.

    Patches are cut on a regular grid with stride 16 (half a patch) from ``china.jpg``
    and then ``flower.jpg`` (427 x 640 pixels each, so 25 rows x 39 columns = 975
    patches per photo), in row-major order from the top-left corner. Raw values are in
    ``[0, 1]``; inputs are normalised per channel (``mean``/``std`` shape ``[3, 1, 1]``).

    Labels: 10 balanced classes, ``label = 5 * photo + quintile``, where ``photo`` is 0
    for china and 1 for flower and ``quintile`` (0 darkest .. 4 brightest) ranks the
    patch's mean brightness among the patches of its own photo. Class names read
    ``"china/darkest"`` .. ``"flower/brightest"``.

    Property ``"textured"``: the mean absolute difference between horizontally plus
    vertically neighbouring pixels is above the median over all patches.

    >>> data = load_sample_patches()
    >>> len(data), data.input_shape, data.class_names[0]
    (1950, (3, 32, 32), 'china/darkest')
    """
    raw, targets = _sample_patch_arrays()
    texture = np.abs(np.diff(raw, axis=3)).mean(axis=(1, 2, 3)) + np.abs(
        np.diff(raw, axis=2)
    ).mean(axis=(1, 2, 3))
    return _image_dataset(
        "sample_patches",
        raw,
        targets,
        properties={"textured": _above_median(texture)},
        class_names=tuple(f"{photo}/{quintile}" for photo in _PHOTOS for quintile in _QUINTILES),
    )


@DATASETS.register("binary_features")
def load_binary_features(
    *, n_samples: int = 2000, n_features: int = 32, seed: int = 0
) -> Dataset:
    """Return synthetic 0/1 features with a logistic label: ``n_samples`` rows ``[n_features]``.

    Generative model, with ``d = n_features``:

    - weights ``w_j ~ N(0, 16 / d)`` and bias ``b = -sum(w) / 2``, so the logit has
      mean 0 (balanced classes) and a standard deviation near 2 (learnable labels);
    - features ``x_ij ~ Bernoulli(0.5)``, independent;
    - label ``y_i ~ Bernoulli(sigmoid(x_i . w + b))``.

    Weights, features and labels come from three streams spawned from ``seed``, so the
    weights do not depend on ``n_samples`` and a smaller dataset is a prefix of a larger
    one. No normalisation is applied (``mean`` 0, ``std`` 1, shape ``[d]``).

    Property ``"dense"``: more than half of the sample's features are 1.

    Args:
        n_samples: number of rows, >= 1.
        n_features: number of binary features ``d``, >= 1.
        seed: non-negative seed of the generator.

    Raises:
        ConfigError: an option is not an integer in its allowed range.

    >>> data = load_binary_features(n_samples=10, n_features=4)
    >>> data.inputs.shape, sorted(data.inputs.unique().tolist())
    (torch.Size([10, 4]), [0.0, 1.0])
    """
    n_samples = require_int("n_samples", n_samples, minimum=1)
    n_features = require_int("n_features", n_features, minimum=1)
    seed = require_int("seed", seed, minimum=0)
    weight_rng, feature_rng, label_rng = (
        np.random.default_rng(stream) for stream in np.random.SeedSequence(seed).spawn(3)
    )
    weights = weight_rng.normal(0.0, 4.0 / np.sqrt(n_features), size=n_features)
    bias = -weights.sum() / 2.0
    features = (feature_rng.random((n_samples, n_features)) < 0.5).astype(np.float32)
    probabilities = 1.0 / (1.0 + np.exp(-(features @ weights + bias)))
    labels = (label_rng.random(n_samples) < probabilities).astype(np.int64)
    return Dataset(
        name="binary_features",
        inputs=torch.from_numpy(features),
        targets=torch.from_numpy(labels),
        num_classes=2,
        mean=torch.zeros(n_features),
        std=torch.ones(n_features),
        value_range=(0.0, 1.0),
        kind="tabular",
        properties={"dense": torch.from_numpy(features.sum(axis=1) > n_features / 2)},
        class_names=("negative", "positive"),
    )
