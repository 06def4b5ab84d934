"""MNIST, CIFAR-10 and CIFAR-100 read from their standard files in a local folder.

Reading never touches the network and parses the files directly (idx for MNIST,
pickled batches for CIFAR), so it does not depend on torchvision's checksums.
Only ``download=True`` uses torchvision, to fetch missing files into ``root``.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray

from leakage.data.base import DATASETS, Dataset
from leakage.errors import ConfigError, DatasetNotFoundError

__all__ = ["DATA_DIR_ENV", "default_data_root", "load_cifar10", "load_cifar100", "load_mnist"]

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "LEAKAGE_DATA_DIR"

# Per-channel statistics of each training set, the values the literature normalises with.
_MNIST_MEAN, _MNIST_STD = (0.1307,), (0.3081,)
_CIFAR10_MEAN, _CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
_CIFAR100_MEAN, _CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR10_FILES = {
    "train": tuple(f"data_batch_{batch}" for batch in range(1, 6)),
    "test": ("test_batch",),
}

# CIFAR batches are pickles; only the globals that rebuild numpy arrays may load.
_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


def default_data_root() -> Path:
    """Return the folder local datasets are read from when no ``root`` is given.

    That is ``$LEAKAGE_DATA_DIR`` when the variable is set and non-empty, else
    ``~/.cache/leakage/data``.

    >>> default_data_root().is_absolute()
    True
    """
    configured = os.environ.get(DATA_DIR_ENV, "")
    if configured:
        return Path(configured).expanduser().absolute()
    return Path.home() / ".cache" / "leakage" / "data"


def _check_options(root: object, split: object, download: object) -> Path:
    """Validate the options shared by the local loaders and return the resolved root."""
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    if not isinstance(download, bool):
        raise ConfigError(f"download must be True or False, got {download!r}")
    if root is None:
        return default_data_root()
    if not isinstance(root, (str, os.PathLike)):
        raise ConfigError(f"root must be a path (str or os.PathLike) or None, got {root!r}")
    return Path(root).expanduser()


def _missing_error(dataset: str, folder: Path, names: tuple[str, ...]) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{dataset} files not found: expected {', '.join(names)} in {folder}; "
        "pass download=True to fetch them"
    )


def _download(torchvision_class: str, root: Path, split: str) -> None:
    """Fetch a dataset's files into ``root`` with torchvision (the only network access)."""
    import torchvision.datasets  # imported here: reading local files never needs it

    logger.info("downloading %s into %s", torchvision_class, root)
    factory = getattr(torchvision.datasets, torchvision_class)
    factory(root=str(root), train=split == "train", download=True)


def _image_dataset(
    name: str,
    pixels: NDArray[np.uint8],
    labels: NDArray[np.int64],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    property_name: str,
    class_names: tuple[str, ...],
) -> Dataset:
    """Build a dataset from uint8 images ``[N, C, H, W]`` and fixed normalisation constants."""
    raw = torch.tensor(pixels, dtype=torch.float32).div_(255.0)
    brightness = raw.mean(dim=(1, 2, 3))
    mean_tensor = torch.tensor(mean).reshape(-1, 1, 1)
    std_tensor = torch.tensor(std).reshape(-1, 1, 1)
    return Dataset(
        name=name,
        inputs=raw.sub_(mean_tensor).div_(std_tensor),
        targets=torch.from_numpy(labels),
        num_classes=len(class_names),
        mean=mean_tensor,
        std=std_tensor,
        value_range=(0.0, 1.0),
        kind="image",
        properties={property_name: brightness > brightness.median()},
        class_names=class_names,
    )


def _check_labels(path: Path, labels: NDArray[np.int64], count: int, num_classes: int) -> None:
    if labels.shape != (count,):
        raise ValueError(f"{path} holds {labels.shape[0]} labels for {count} images")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{path} holds labels outside [0, {num_classes})")


# --- MNIST -----------------------------------------------------------------------------


def _find_idx(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path) -> NDArray[np.uint8]:
    """Return the unsigned-byte array stored in an idx file (optionally gzipped).

    The idx header is two zero bytes, a type code (0x08: unsigned byte), the number of
    dimensions, then each dimension as a big-endian uint32.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        content = stream.read()
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    ndim = content[3]
    header_size = 4 + 4 * ndim
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", count=ndim, offset=4))
    array = np.frombuffer(content, np.uint8, offset=header_size)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {array.size} bytes of data, its header says {shape}")
    return array.reshape(shape)


@DATASETS.register("mnist")
def load_mnist(
    *,
    root: str | os.PathLike[str] | None = None,
    split: Literal["train", "test"] = "train",
    download: bool = False,
) -> Dataset:
    """Return MNIST from ``<root>/MNIST/raw/``: images ``[1, 28, 28]``, 10 classes.

    Reads the idx files ``train-images-idx3-ubyte``/``train-labels-idx1-ubyte`` (or the
    ``t10k-`` pair for ``split="test"``), uncompressed or with a ``.gz`` suffix. Raw
    pixels are scaled to ``[0, 1]`` and normalised with the usual mean 0.1307 and
    standard deviation 0.3081 (shape ``[1, 1, 1]``).

    Property ``"high_ink"``: the image's mean intensity is above the split's median.

    Args:
        root: data folder; ``None`` means `default_data_root`.
        split: ``"train"`` (60000 images) or ``"test"`` (10000).
        download: fetch missing files with torchvision first.

    Raises:
        ConfigError: an option has the wrong type or value.
        DatasetNotFoundError: the files are missing and ``download`` is False.
        ValueError: a file is not a valid idx file or the counts disagree.
    """
    folder = _check_options(root, split, download) / "MNIST" / "raw"
    names = _MNIST_FILES[split]
    paths = [_find_idx(folder, name) for name in names]
    if None in paths and download:
        _download("MNIST", folder.parent.parent, split)
        paths = [_find_idx(folder, name) for name in names]
    images_path, labels_path = paths
    if images_path is None or labels_path is None:
        raise _missing_error("MNIST", folder, tuple(f"{name}[.gz]" for name in names))
    images = _read_idx(images_path)
    if images.ndim != 3:
        raise ValueError(f"{images_path} should hold images [N, H, W], got shape {images.shape}")
    labels = _read_idx(labels_path).astype(np.int64)
    _check_labels(labels_path, labels, len(images), 10)
    return _image_dataset(
        "mnist",
        images[:, None, :, :],
        labels,
        _MNIST_MEAN,
        _MNIST_STD,
        "high_ink",
        tuple(str(digit) for digit in range(10)),
    )


# --- CIFAR -----------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, so a stray file cannot run code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict[bytes, object]:
    try:
        content = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"{path} is not a CIFAR python batch: {error}") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} is not a CIFAR python batch: expected a dict")
    return content


def _read_cifar_batch(path: Path, label_key: bytes) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Return images ``[N, 3, 32, 32]`` and labels from one pickled CIFAR batch."""
    content = _read_pickle(path)
    data = content.get(b"data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(f"{path} needs a uint8 array [N, 3072] under b'data'")
    if data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path} needs a uint8 array [N, 3072] under b'data', got {data.shape}")
    if label_key not in content:
        raise ValueError(f"{path} has no {label_key!r} entry")
    labels = np.asarray(content[label_key], dtype=np.int64)
    # Each row stores the red, green and blue 32x32 planes one after another.
    return data.reshape(-1, 3, 32, 32), labels


def _read_class_names(path: Path, key: bytes, num_classes: int) -> tuple[str, ...]:
    names = _read_pickle(path).get(key)
    if not isinstance(names, list) or len(names) != num_classes:
        raise ValueError(f"{path} needs a list of {num_classes} names under {key!r}")
    return tuple(name.decode() if isinstance(name, bytes) else str(name) for name in names)


def _load_cifar(
    *,
    name: str,
    display_name: str,
    root: object,
    split: object,
    download: object,
    folder_name: str,
    split_files: dict[str, tuple[str, ...]],
    meta_file: str,
    label_key: bytes,
    names_key: bytes,
    num_classes: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    torchvision_class: str,
) -> Dataset:
    data_root = _check_options(root, split, download)
    folder = data_root / folder_name
    batch_files = split_files[str(split)]
    needed = (*batch_files, meta_file)
    if download and not all((folder / file).is_file() for file in needed):
        _download(torchvision_class, data_root, str(split))
    if not all((folder / file).is_file() for file in needed):
        raise _missing_error(display_name, folder, needed)
    batches = [_read_cifar_batch(folder / file, label_key) for file in batch_files]
    for file, (images, labels) in zip(batch_files, batches, strict=True):
        _check_labels(folder / file, labels, len(images), num_classes)
    return _image_dataset(
        name,
        np.concatenate([images for images, _ in batches]),
        np.concatenate([labels for _, labels in batches]),
        mean,
        std,
        "bright",
        _read_class_names(folder / meta_file, names_key, num_classes),
    )


@DATASETS.register("cifar10")
def load_cifar10(
    *,
    root: str | os.PathLike[str] | None = None,
    split: Literal["train", "test"] = "train",
    download: bool = False,
) -> Dataset:
    """Return CIFAR-10 from ``<root>/cifar-10-batches-py/``: images ``[3, 32, 32]``, 10 classes.

    Reads the python batches ``data_batch_1`` .. ``data_batch_5`` (or ``test_batch``)
    and the class names from ``batches.meta``. Raw pixels are scaled to ``[0, 1]`` and
    normalised with the training set's per-channel mean (0.4914, 0.4822, 0.4465) and
    standard deviation (0.2470, 0.2435, 0.2616), shape ``[3, 1, 1]``.

    Property ``"bright"``: the image's mean intensity is above the split's median.

    Args:
        root: data folder; ``None`` means `default_data_root`.
        split: ``"train"`` (50000 images) or ``"test"`` (10000).
        download: fetch missing files with torchvision first.

    Raises:
        ConfigError: an option has the wrong type or value.
        DatasetNotFoundError: the files are missing and ``download`` is False.
        ValueError: a file is not a CIFAR python batch or the counts disagree.
    """
    return _load_cifar(
        name="cifar10",
        display_name="CIFAR-10",
        root=root,
        split=split,
        download=download,
        folder_name="cifar-10-batches-py",
        split_files=_CIFAR10_FILES,
        meta_file="batches.meta",
        label_key=b"labels",
        names_key=b"label_names",
        num_classes=10,
        mean=_CIFAR10_MEAN,
        std=_CIFAR10_STD,
        torchvision_class="CIFAR10",
    )


@DATASETS.register("cifar100")
def load_cifar100(
    *,
    root: str | os.PathLike[str] | None = None,
    split: Literal["train", "test"] = "train",
    download: bool = False,
) -> Dataset:
    """Return CIFAR-100 from ``<root>/cifar-100-python/``: images ``[3, 32, 32]``, 100 fine classes.

    Reads the python files ``train`` (or ``test``) with their fine labels and the fine
    class names from ``meta``. Raw pixels are scaled to ``[0, 1]`` and normalised with
    the training set's per-channel mean (0.5071, 0.4865, 0.4409) and standard deviation
    (0.2673, 0.2564, 0.2762), shape ``[3, 1, 1]``.

    Property ``"bright"``: the image's mean intensity is above the split's median.

    Args:
        root: data folder; ``None`` means `default_data_root`.
        split: ``"train"`` (50000 images) or ``"test"`` (10000).
        download: fetch missing files with torchvision first.

    Raises:
        ConfigError: an option has the wrong type or value.
        DatasetNotFoundError: the files are missing and ``download`` is False.
        ValueError: a file is not a CIFAR python batch or the counts disagree.
    """
    return _load_cifar(
        name="cifar100",
        display_name="CIFAR-100",
        root=root,
        split=split,
        download=download,
        folder_name="cifar-100-python",
        split_files={"train": ("train",), "test": ("test",)},
        meta_file="meta",
        label_key=b"fine_labels",
        names_key=b"fine_label_names",
        num_classes=100,
        mean=_CIFAR100_MEAN,
        std=_CIFAR100_STD,
        torchvision_class="CIFAR100",
    )
