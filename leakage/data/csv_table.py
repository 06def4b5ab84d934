"""The ``"csv"`` dataset: a table with a header row, a label column, numeric features and an optional property.

Labels may be class indices or names (sorted names become classes); the property column
(true/false or 1/0) becomes ``properties[<column>]`` for property inference.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from leakage.checks import require_optional_int
from leakage.data.base import DATASETS, Dataset
from leakage.data.user import _FALSE, _INTEGER, _TRUE, _one_line, _require_path, dataset_from_tensors
from leakage.errors import ConfigError

__all__ = ["load_csv"]


@DATASETS.register("csv")
def load_csv(
    *,
    path: str | os.PathLike[str] | None = None,
    label: str | None = None,
    features: Sequence[str] | None = None,
    property: str | None = None,  # the option's name in configuration files, so it shadows the builtin
    num_classes: int | None = None,
) -> Dataset:
    """Return a CSV table (header row first, UTF-8) as a tabular dataset.

    Each feature column must hold finite numbers; features are normalised per column
    with their own statistics, and ``value_range`` is the smallest and largest raw
    value over all features. Labels that are all integers are class indices; otherwise
    every label is a name, and the sorted distinct names become classes ``0, 1, ...``
    and ``class_names``. Blank lines are skipped; rows are counted from 1 after the
    header, and messages also give the file's line.

    Args:
        path: the CSV file.
        label: the label column.
        features: the feature columns, in order; default every column except the label
            and the property column, in file order.
        property: a boolean column (``true``/``false``/``1``/``0``, any case) stored as
            ``properties[<column>]``.
        num_classes: number of classes; default the number of label names, or the
            largest integer label plus one.

    Raises:
        ConfigError: an option is missing or invalid, or the file holds a value that
            does not fit (the message gives row, line, column and value).
    """
    file = _require_path(path, "a CSV file with a header row")
    if not file.is_file():
        raise ConfigError(f"dataset_options.path must be a CSV file, got a folder: {file}")
    if not isinstance(label, str) or not label:
        raise ConfigError(f"dataset_options.label is required: the name of the label column, got {label!r}")
    count = require_optional_int("dataset_options.num_classes", num_classes, minimum=2)
    header, rows = _read_csv(file)
    columns = ", ".join(header)
    for option, column in (("label", label), ("property", property)):
        if column is not None and column not in header:
            raise ConfigError(f"dataset_options.{option} {column!r} is not a column of {file.name}; columns: {columns}")
    chosen = _choose_features(features, header, label, property, file.name)
    values = np.empty((len(rows), len(chosen)), dtype=np.float64)
    for row_index, (line, row) in enumerate(rows):
        for feature_index, column in enumerate(chosen):
            text = _cell(row, header, column, row_index, line)
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise ConfigError(
                    f"dataset_options.path: row {row_index + 1} (line {line}), column {column!r} must be a finite "
                    f"number, got {text!r}; leave the column out with dataset_options.features"
                )
            values[row_index, feature_index] = number
    if values.min() == values.max():
        raise ConfigError(
            f"dataset_options.features: every value in column(s) {', '.join(chosen)} is {float(values.min())!r}, "
            "so they carry nothing to learn"
        )
    targets, class_names = _csv_labels(rows, header, label, count)
    flags = {} if property is None else {property: _csv_property(rows, header, property)}
    return dataset_from_tensors(
        torch.from_numpy(values),
        targets,
        name="csv",
        num_classes=len(class_names),
        kind="tabular",
        class_names=class_names,
        properties=flags,
    )


def _read_csv(file: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Return the header and the non-blank rows, each with the file line it ends on."""
    try:
        with file.open(encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise ConfigError(f"dataset_options.path: {file.name} is not UTF-8 text") from None
    except csv.Error as error:
        raise ConfigError(f"dataset_options.path: {file.name} is not a readable CSV file: {_one_line(error)}") from None
    if not header:
        raise ConfigError(f"dataset_options.path: {file.name} is empty; it needs a header row and data rows")
    header = [column.strip() for column in header]
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise ConfigError(f"dataset_options.path: {file.name} repeats the column name {repeated[0]!r} in its header")
    if not rows:
        raise ConfigError(f"dataset_options.path: {file.name} has a header but no data rows")
    for row_index, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise ConfigError(
                f"dataset_options.path: row {row_index + 1} (line {line}) has {len(row)} values, "
                f"the header has {len(header)} columns"
            )
    return header, rows


def _choose_features(
    features: object, header: list[str], label: str, property_column: str | None, file_name: str
) -> list[str]:
    if features is None:
        chosen = [column for column in header if column not in (label, property_column)]
        if not chosen:
            raise ConfigError(f"dataset_options.features: {file_name} has no column besides the label and property")
        return chosen
    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise ConfigError(f"dataset_options.features must be a non-empty list of column names, got {features!r}")
    for column in features:
        if not isinstance(column, str) or column not in header:
            raise ConfigError(
                f"dataset_options.features names {column!r}, not a column of {file_name}; columns: {', '.join(header)}"
            )
    if label in features:
        raise ConfigError(f"dataset_options.features must not include the label column {label!r}")
    if len(set(features)) != len(features):
        raise ConfigError(f"dataset_options.features names a column twice: {list(features)!r}")
    return list(features)


def _cell(row: list[str], header: list[str], column: str, row_index: int, line: int) -> str:
    """Return the stripped value of ``column`` in ``row``, refusing an empty one."""
    text = row[header.index(column)].strip()
    if not text:
        raise ConfigError(
            f"dataset_options.path: missing value in row {row_index + 1} (line {line}), column {column!r}"
        )
    return text


def _csv_labels(
    rows: list[tuple[int, list[str]]], header: list[str], label: str, num_classes: int | None
) -> tuple[Tensor, tuple[str, ...]]:
    """Return the class index of every row and the class names."""
    texts = [_cell(row, header, label, row_index, line) for row_index, (line, row) in enumerate(rows)]
    if all(_INTEGER.fullmatch(text) for text in texts):
        indices = [int(text) for text in texts]
        for row_index, index in enumerate(indices):
            if index < 0 or (num_classes is not None and index >= num_classes):
                allowed = f"indices < dataset_options.num_classes={num_classes}" if index >= 0 else "indices >= 0"
                raise ConfigError(
                    f"dataset_options.label column {label!r} must hold class {allowed}, "
                    f"got {texts[row_index]!r} in row {row_index + 1} (line {rows[row_index][0]})"
                )
        count = num_classes if num_classes is not None else max(indices) + 1
        if count < 2:
            raise ConfigError(
                f"dataset_options.label column {label!r} holds only class 0; a classifier needs two classes"
            )
        return torch.tensor(indices, dtype=torch.int64), tuple(str(index) for index in range(count))
    names = sorted(set(texts))
    if len(names) < 2:
        raise ConfigError(
            f"dataset_options.label column {label!r} holds only the label {names[0]!r}; a classifier needs two classes"
        )
    if num_classes is not None and num_classes != len(names):
        raise ConfigError(
            f"dataset_options.num_classes is {num_classes}, but label column {label!r} holds {len(names)} "
            f"names: {', '.join(names)}"
        )
    position = {name: index for index, name in enumerate(names)}
    return torch.tensor([position[text] for text in texts], dtype=torch.int64), tuple(names)


def _csv_property(rows: list[tuple[int, list[str]]], header: list[str], column: str) -> Tensor:
    """Return the boolean property column as a bool tensor."""
    flags = []
    for row_index, (line, row) in enumerate(rows):
        text = _cell(row, header, column, row_index, line)
        if text.lower() not in _TRUE | _FALSE:
            raise ConfigError(
                f"dataset_options.property column {column!r} must hold true/false or 1/0, "
                f"got {text!r} in row {row_index + 1} (line {line})"
            )
        flags.append(text.lower() in _TRUE)
    return torch.tensor(flags, dtype=torch.bool)
