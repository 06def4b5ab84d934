"""Tests for the offline datasets that ship with installed packages."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import datasets as sklearn_datasets
from sklearn.linear_model import LogisticRegression

from leakage.data import DATASETS, Dataset, load_dataset
from leakage.errors import ConfigError

BUILTIN = ["binary_features", "breast_cancer", "digits", "sample_patches"]

EXPECTED = {
    # name: (num_samples, input_shape, num_classes, kind, mean shape, property)
    "binary_features": (2000, (32,), 2, "tabular", (32,), "dense"),
    "breast_cancer": (569, (30,), 2, "tabular", (30,), "high_texture"),
    "digits": (1797, (1, 8, 8), 10, "image", (1, 1, 1), "high_ink"),
    "sample_patches": (1950, (3, 32, 32), 10, "image", (3, 1, 1), "textured"),
}


def test_every_builtin_dataset_is_registered() -> None:
    assert set(BUILTIN) <= set(DATASETS.names())


@pytest.mark.parametrize("name", BUILTIN)
def test_dataset_has_documented_shapes_and_types(name: str) -> None:
    num_samples, input_shape, num_classes, kind, stats_shape, property_name = EXPECTED[name]

    data = load_dataset(name)

    assert isinstance(data, Dataset)
    assert data.name == name
    assert len(data) == num_samples and data.input_shape == input_shape
    assert data.inputs.dtype == torch.float32 and data.targets.dtype == torch.int64
    assert data.targets.shape == (num_samples,)
    assert data.num_classes == num_classes == len(data.class_names)
    assert sorted(torch.unique(data.targets).tolist()) == list(range(num_classes))
    assert data.kind == kind
    assert data.mean.shape == stats_shape and data.std.shape == stats_shape
    assert bool((data.std > 0).all())
    assert list(data.properties) == [property_name]
    assert torch.isfinite(data.inputs).all()


@pytest.mark.parametrize("name", BUILTIN)
def test_denormalized_inputs_stay_in_value_range(name: str) -> None:
    data = load_dataset(name)

    raw = data.denormalize(data.inputs)

    low, high = data.value_range
    assert low < high
    assert float(raw.min()) >= low - 1e-3 * (high - low)
    assert float(raw.max()) <= high + 1e-3 * (high - low)


@pytest.mark.parametrize("name", BUILTIN)
def test_property_is_a_balanced_flag_that_is_not_the_label(name: str) -> None:
    data = load_dataset(name)

    (flags,) = data.properties.values()

    assert flags.dtype == torch.bool and flags.shape == (len(data),)
    assert 0.3 < float(flags.float().mean()) < 0.7
    for label in range(data.num_classes):
        assert not torch.equal(flags, data.targets == label)


@pytest.mark.parametrize("name", BUILTIN)
def test_loading_twice_gives_equal_data_unaffected_by_caller_changes(name: str) -> None:
    first = load_dataset(name)
    expected = first.inputs.clone()
    first.inputs.add_(100.0)
    first.targets.zero_()

    second = load_dataset(name)

    assert torch.equal(second.inputs, expected)
    assert not torch.equal(second.targets, first.targets)


@pytest.mark.parametrize("name", ["digits", "sample_patches"])
def test_images_are_normalised_per_channel(name: str) -> None:
    data = load_dataset(name)

    per_channel_mean = data.inputs.mean(dim=(0, 2, 3))
    per_channel_std = data.inputs.std(dim=(0, 2, 3))

    assert torch.allclose(per_channel_mean, torch.zeros_like(per_channel_mean), atol=1e-4)
    assert torch.allclose(per_channel_std, torch.ones_like(per_channel_std), atol=1e-3)


def test_digits_raw_pixels_are_source_values_over_16() -> None:
    source = sklearn_datasets.load_digits()

    data = load_dataset("digits")

    expected = torch.tensor(source.images / 16.0, dtype=torch.float32)
    assert torch.allclose(data.denormalize(data.inputs)[:, 0], expected, atol=1e-5)
    assert torch.equal(data.targets, torch.tensor(source.target))
    ink = expected.sum(dim=(1, 2))
    assert torch.equal(data.properties["high_ink"], ink > ink.median())


def test_breast_cancer_is_standardised_per_feature() -> None:
    source = sklearn_datasets.load_breast_cancer()

    data = load_dataset("breast_cancer")

    assert data.class_names == ("malignant", "benign")
    assert data.value_range == (float(source.data.min()), float(source.data.max()))
    assert torch.allclose(data.inputs.mean(dim=0), torch.zeros(30), atol=1e-4)
    assert torch.allclose(data.inputs.std(dim=0, unbiased=False), torch.ones(30), atol=1e-4)
    raw = data.denormalize(data.inputs)
    assert torch.allclose(raw, torch.tensor(source.data, dtype=torch.float32), rtol=1e-4, atol=1e-3)
    texture = source.data[:, list(source.feature_names).index("mean texture")]
    assert data.properties["high_texture"].tolist() == list(texture > np.median(texture))


def test_sample_patches_cut_a_stride_16_grid_from_china_then_flower() -> None:
    bunch = sklearn_datasets.load_sample_images()
    photos = {Path(path).name: image for path, image in zip(bunch.filenames, bunch.images)}
    china = torch.tensor(photos["china.jpg"], dtype=torch.float32).permute(2, 0, 1) / 255
    flower = torch.tensor(photos["flower.jpg"], dtype=torch.float32).permute(2, 0, 1) / 255

    data = load_dataset("sample_patches")

    raw = data.denormalize(data.inputs)
    assert torch.allclose(raw[0], china[:, :32, :32], atol=1e-5)
    assert torch.allclose(raw[1], china[:, :32, 16:48], atol=1e-5)
    assert torch.allclose(raw[39], china[:, 16:48, :32], atol=1e-5)
    assert torch.allclose(raw[975], flower[:, :32, :32], atol=1e-5)
    assert bool((data.targets[:975] < 5).all()) and bool((data.targets[975:] >= 5).all())


def test_sample_patch_labels_rank_brightness_within_each_photo() -> None:
    data = load_dataset("sample_patches")

    brightness = data.denormalize(data.inputs).mean(dim=(1, 2, 3))

    assert data.class_names[0] == "china/darkest" and data.class_names[9] == "flower/brightest"
    assert torch.equal(data.targets.bincount(), torch.full((10,), 195))
    for photo in range(2):
        for quintile in range(4):
            darker = brightness[data.targets == 5 * photo + quintile]
            brighter = brightness[data.targets == 5 * photo + quintile + 1]
            assert float(darker.max()) <= float(brighter.min())


def test_binary_features_are_zero_one_with_unit_normalisation() -> None:
    data = load_dataset("binary_features", n_samples=300, n_features=12, seed=3)

    assert data.inputs.shape == (300, 12)
    assert set(torch.unique(data.inputs).tolist()) == {0.0, 1.0}
    assert torch.equal(data.mean, torch.zeros(12)) and torch.equal(data.std, torch.ones(12))
    assert torch.equal(data.properties["dense"], data.inputs.sum(dim=1) > 6)


def test_binary_feature_labels_follow_a_learnable_logistic_model() -> None:
    data = load_dataset("binary_features")
    train, test = slice(0, 1500), slice(1500, None)

    model = LogisticRegression().fit(data.inputs[train].numpy(), data.targets[train].numpy())

    accuracy = model.score(data.inputs[test].numpy(), data.targets[test].numpy())
    assert 0.3 < float(data.targets.float().mean()) < 0.7
    assert accuracy > 0.7


def test_binary_features_depend_on_seed_and_extend_as_a_prefix() -> None:
    small = load_dataset("binary_features", n_samples=50, seed=1)
    large = load_dataset("binary_features", n_samples=500, seed=1)
    other = load_dataset("binary_features", n_samples=50, seed=2)

    assert torch.equal(small.inputs, large.inputs[:50])
    assert torch.equal(small.targets, large.targets[:50])
    assert not torch.equal(small.inputs, other.inputs)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("n_samples", 0),
        ("n_samples", 2.5),
        ("n_samples", True),
        ("n_features", -1),
        ("n_features", "32"),
        ("seed", -1),
    ],
)
def test_binary_features_reject_bad_options(option: str, value: object) -> None:
    message = rf"{option} must be an integer >= \d, got {re.escape(repr(value))}"
    with pytest.raises(ConfigError, match=message):
        load_dataset("binary_features", **{option: value})


@pytest.mark.parametrize("name", ["breast_cancer", "digits", "sample_patches"])
def test_fixed_datasets_reject_options(name: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown option .seed. for dataset .{name}.; it accepts: no options"):
        load_dataset(name, seed=0)
