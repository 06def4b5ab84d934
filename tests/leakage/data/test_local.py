"""Tests for MNIST/CIFAR loaders, reading small fake files written in the real formats."""

from __future__ import annotations

import collections
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets

from leakage.data import default_data_root, load_dataset
from leakage.errors import ConfigError, DatasetNotFoundError

NUM_FAKE = 20


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)


def write_fake_mnist(
    root: Path, split: str = "train", *, compress: bool = False, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(NUM_FAKE, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=NUM_FAKE, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress=compress)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress=compress)
    return images, labels


def write_pickle(path: Path, content: object) -> None:
    path.write_bytes(pickle.dumps(content, protocol=2))


def write_fake_cifar10(root: Path, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write five train batches of 4 images, a test batch and the meta file."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = rng.integers(0, 256, size=(NUM_FAKE, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=NUM_FAKE)
    for batch, rows in enumerate(np.split(np.arange(NUM_FAKE), 5), start=1):
        write_pickle(
            folder / f"data_batch_{batch}",
            {b"data": images[rows], b"labels": labels[rows].tolist()},
        )
    write_pickle(folder / "test_batch", {b"data": images[:3], b"labels": labels[:3].tolist()})
    names = [f"class{index}".encode() for index in range(10)]
    write_pickle(folder / "batches.meta", {b"label_names": names})
    return images, labels


def write_fake_cifar100(root: Path, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    images = rng.integers(0, 256, size=(NUM_FAKE, 3072), dtype=np.uint8)
    fine = rng.integers(0, 100, size=NUM_FAKE)
    coarse = fine // 5
    for split in ("train", "test"):
        write_pickle(
            folder / split,
            {b"data": images, b"fine_labels": fine.tolist(), b"coarse_labels": coarse.tolist()},
        )
    write_pickle(folder / "meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)]})
    return images, fine


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_reads_idx_files(tmp_path: Path, split: str, compress: bool) -> None:
    images, labels = write_fake_mnist(tmp_path, split, compress=compress)

    data = load_dataset("mnist", root=tmp_path, split=split)

    assert data.name == "mnist" and data.kind == "image"
    assert data.inputs.shape == (NUM_FAKE, 1, 28, 28) and data.inputs.dtype == torch.float32
    assert data.targets.dtype == torch.int64
    assert data.targets.tolist() == labels.tolist()
    assert data.num_classes == 10 and data.class_names == tuple("0123456789")
    expected = torch.tensor(images, dtype=torch.float32)[:, None] / 255
    assert torch.allclose(data.denormalize(data.inputs), expected, atol=1e-5)
    assert torch.allclose(data.mean, torch.tensor(0.1307)) and data.mean.shape == (1, 1, 1)
    assert torch.allclose(data.std, torch.tensor(0.3081)) and data.std.shape == (1, 1, 1)
    assert data.value_range == (0.0, 1.0)


def test_mnist_high_ink_marks_images_above_the_median(tmp_path: Path) -> None:
    images, _ = write_fake_mnist(tmp_path)

    data = load_dataset("mnist", root=tmp_path)

    ink = images.reshape(NUM_FAKE, -1).mean(axis=1)
    assert data.properties["high_ink"].tolist() == list(ink > np.median(ink))
    assert int(data.properties["high_ink"].sum()) == NUM_FAKE // 2


def test_mnist_reads_from_the_environment_folder_when_root_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, labels = write_fake_mnist(tmp_path)
    monkeypatch.setenv("LEAKAGE_DATA_DIR", str(tmp_path))

    data = load_dataset("mnist")

    assert data.targets.tolist() == labels.tolist()


def test_default_root_is_the_environment_variable_or_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKAGE_DATA_DIR", str(tmp_path / "data"))
    from_env = default_data_root()
    monkeypatch.delenv("LEAKAGE_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    from_home = default_data_root()

    assert from_env == tmp_path / "data"
    assert from_home == tmp_path / "home" / ".cache" / "leakage" / "data"


@pytest.mark.parametrize(
    ("name", "folder", "expected_file"),
    [
        ("mnist", "MNIST/raw", "train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py", "data_batch_1"),
        ("cifar100", "cifar-100-python", "train"),
    ],
)
def test_missing_files_raise_one_line_naming_folder_files_and_download(
    tmp_path: Path, name: str, folder: str, expected_file: str
) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset(name, root=tmp_path)

    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / folder) in message
    assert expected_file in message
    assert "download=True" in message


def test_mnist_with_only_images_reports_missing_files(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").unlink()

    with pytest.raises(DatasetNotFoundError, match="train-labels-idx1-ubyte"):
        load_dataset("mnist", root=tmp_path)


def test_download_asks_torchvision_then_reads_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_mnist(root: str, train: bool, download: bool) -> None:
        calls.append((Path(root), train, download))
        write_fake_mnist(Path(root), "train" if train else "test")

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)

    data = load_dataset("mnist", root=tmp_path, split="test", download=True)

    assert calls == [(tmp_path, False, True)]
    assert len(data) == NUM_FAKE


def test_download_is_skipped_when_files_are_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_fake_cifar10(tmp_path)

    def refuse(**options: object) -> None:
        raise AssertionError(f"torchvision must not be called, got {options}")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", refuse)

    data = load_dataset("cifar10", root=tmp_path, download=True)

    assert len(data) == NUM_FAKE


def test_corrupt_idx_file_is_rejected(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path)
    images_path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images_path.write_bytes(images_path.read_bytes()[:-5])

    with pytest.raises(ValueError, match="header says"):
        load_dataset("mnist", root=tmp_path)


def test_cifar10_concatenates_the_five_batches_in_order(tmp_path: Path) -> None:
    images, labels = write_fake_cifar10(tmp_path)

    data = load_dataset("cifar10", root=tmp_path)

    assert data.inputs.shape == (NUM_FAKE, 3, 32, 32) and data.inputs.dtype == torch.float32
    assert data.targets.dtype == torch.int64 and data.targets.tolist() == labels.tolist()
    assert data.class_names == tuple(f"class{index}" for index in range(10))
    # Rows hold the red, green and blue planes in turn, each 32x32 row-major.
    expected = torch.tensor(images, dtype=torch.float32).reshape(-1, 3, 32, 32) / 255
    assert torch.allclose(data.denormalize(data.inputs), expected, atol=1e-5)
    assert torch.allclose(data.mean.flatten(), torch.tensor([0.4914, 0.4822, 0.4465]))
    assert data.mean.shape == data.std.shape == (3, 1, 1)
    brightness = expected.mean(dim=(1, 2, 3))
    assert torch.equal(data.properties["bright"], brightness > brightness.median())


def test_cifar10_test_split_reads_the_test_batch(tmp_path: Path) -> None:
    _, labels = write_fake_cifar10(tmp_path)

    data = load_dataset("cifar10", root=tmp_path, split="test")

    assert data.targets.tolist() == labels[:3].tolist()


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar100_uses_fine_labels_and_names(tmp_path: Path, split: str) -> None:
    images, fine = write_fake_cifar100(tmp_path)

    data = load_dataset("cifar100", root=tmp_path, split=split)

    assert data.inputs.shape == (NUM_FAKE, 3, 32, 32)
    assert data.targets.tolist() == fine.tolist()
    assert data.num_classes == 100 and data.class_names[7] == "fine7"
    expected = torch.tensor(images, dtype=torch.float32).reshape(-1, 3, 32, 32) / 255
    assert torch.allclose(data.denormalize(data.inputs), expected, atol=1e-5)


def test_cifar_pickle_with_foreign_objects_is_refused(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    write_pickle(batch, {b"data": collections.OrderedDict(), b"labels": []})

    with pytest.raises(ValueError, match="collections.OrderedDict is not allowed"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar_labels_out_of_range_are_rejected(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    write_pickle(batch, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})

    with pytest.raises(ValueError, match=r"labels outside \[0, 10\)"):
        load_dataset("cifar10", root=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("split", "validation", "split must be 'train' or 'test', got 'validation'"),
        ("download", "yes", "download must be True or False, got 'yes'"),
        ("root", 3, "root must be a path"),
    ],
)
def test_bad_options_are_rejected(
    tmp_path: Path, name: str, option: str, value: object, message: str
) -> None:
    options: dict[str, object] = {"root": tmp_path, option: value}

    with pytest.raises(ConfigError, match=message):
        load_dataset(name, **options)
