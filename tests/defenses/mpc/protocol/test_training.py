"""Tests for two-party SecureML logistic-regression training on secret shares.

Reference: Mohassel & Zhang, "SecureML", IEEE S&P 2017, Sec. 4.1-4.3.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from defenses.mpc.protocol import (
    MSB_ROUNDS,
    LogisticModel,
    MpcTrainingResult,
    logistic_accuracy,
    minibatch_schedule,
    train_logistic_regression_mpc,
    train_logistic_regression_plain,
)

Split = tuple[list[NDArray[np.float64]], list[NDArray[np.float64]], NDArray[np.float64], NDArray[np.float64]]


def _prepare(features: NDArray[np.float64], labels: NDArray[np.int64]) -> Split:
    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    half = len(x_train) // 2
    y_float = y_train.astype(np.float64)
    return [x_train[:half], x_train[half:]], [y_float[:half], y_float[half:]], x_test, y_test.astype(np.float64)


@cache
def _dataset(name: str) -> Split:
    if name == "breast_cancer":
        features, labels = load_breast_cancer(return_X_y=True)
        return _prepare(features, labels)
    features, labels = load_digits(return_X_y=True)
    binary = labels < 2  # digit 0 versus digit 1
    return _prepare(features[binary], labels[binary])


def _flat(model: LogisticModel) -> NDArray[np.float64]:
    return np.array([*model.weights, model.bias])


@pytest.mark.parametrize("dataset", ["breast_cancer", "digits_0_vs_1"])
def test_mpc_piecewise_matches_plaintext_twin(dataset: str) -> None:
    features, labels, x_test, y_test = _dataset(dataset)
    settings = {"epochs": 3, "batch_size": 32, "lr": 0.1, "sigmoid": "piecewise", "seed": 7}
    result = train_logistic_regression_mpc(features, labels, fractional_bits=16, **settings)  # type: ignore[arg-type]
    twin = train_logistic_regression_plain(features, labels, **settings)  # type: ignore[arg-type]

    assert np.abs(_flat(result.model) - _flat(twin)).max() < 1e-3
    mpc_accuracy = logistic_accuracy(result.model, x_test, y_test)
    twin_accuracy = logistic_accuracy(twin, x_test, y_test)
    assert abs(mpc_accuracy - twin_accuracy) * len(y_test) <= 1.0 + 1e-9
    assert twin_accuracy > 0.9

    rows = sum(len(y) for y in labels)
    assert result.iterations == 3 * -(-rows // 32)
    # Per step: forward matmul, sigmoid (MSB_ROUNDS), backward matmul.
    assert result.rounds_per_iteration == MSB_ROUNDS + 2 == 7
    # Input sharing, opening the masked data E = X - A and opening the model: one round each.
    assert result.rounds == result.iterations * 7 + 3
    assert result.bytes_per_iteration > 0
    assert result.bytes_sent > result.bytes_per_iteration * result.iterations
    assert result.dealer_seconds > 0 and result.online_seconds > 0


def test_mpc_cubic_variant_trains() -> None:
    features, labels, x_test, y_test = _dataset("breast_cancer")
    # The cubic fit blows up for |x| > 4, so it needs a smaller step than the piecewise sigmoid.
    settings = {"epochs": 3, "batch_size": 32, "lr": 0.01, "sigmoid": "cubic", "seed": 7}
    result = train_logistic_regression_mpc(features, labels, **settings)  # type: ignore[arg-type]
    twin = train_logistic_regression_plain(features, labels, **settings)  # type: ignore[arg-type]

    assert np.abs(_flat(result.model) - _flat(twin)).max() < 1e-3
    assert logistic_accuracy(result.model, x_test, y_test) > 0.85
    assert result.rounds_per_iteration == 4  # matmul, 2 sigmoid products, matmul
    assert 0 < result.bytes_per_iteration


def test_result_to_dict_is_json_serialisable() -> None:
    features, labels, _, _ = _dataset("digits_0_vs_1")
    result = train_logistic_regression_mpc(features, labels, epochs=1, batch_size=64, lr=0.1, seed=1)
    assert isinstance(result, MpcTrainingResult)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["sigmoid"] == "piecewise"
    assert len(payload["weights"]) == features[0].shape[1]
    assert payload["rounds"] == result.rounds


def test_schedule_is_deterministic_and_covers_every_row_each_epoch() -> None:
    first = minibatch_schedule(10, epochs=2, batch_size=4, seed=3)
    second = minibatch_schedule(10, epochs=2, batch_size=4, seed=3)
    assert [b.tolist() for b in first] == [b.tolist() for b in second]
    assert [len(b) for b in first] == [4, 4, 2, 4, 4, 2]
    assert sorted(np.concatenate(first[:3]).tolist()) == list(range(10))
    assert sorted(np.concatenate(first[3:]).tolist()) == list(range(10))


def test_rejects_bad_inputs() -> None:
    x = [np.zeros((3, 2)), np.zeros((3, 2))]
    y = [np.zeros(3), np.ones(3)]
    with pytest.raises(ValueError, match="2 or 3 parties"):
        train_logistic_regression_mpc(x[:1], y[:1], epochs=1, batch_size=2, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        train_logistic_regression_plain(x, [np.full(3, 2.0), y[1]], epochs=1, batch_size=2, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="sigmoid"):
        train_logistic_regression_mpc(x, y, epochs=1, batch_size=2, lr=0.1, sigmoid="tanh", seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr > 0"):
        train_logistic_regression_plain(x, y, epochs=1, batch_size=2, lr=0.0, seed=0)


@pytest.mark.parametrize("dataset", ["breast_cancer", "digits_0_vs_1"])
def test_three_party_training_matches_plaintext_twin(dataset: str) -> None:
    features, labels, x_test, y_test = _dataset(dataset)
    rows, targets = np.concatenate(features), np.concatenate(labels)
    thirds = np.array_split(np.arange(len(rows)), 3)
    settings = {"epochs": 3, "batch_size": 32, "lr": 0.1, "sigmoid": "piecewise", "seed": 7}
    split = ([rows[t] for t in thirds], [targets[t] for t in thirds])
    result = train_logistic_regression_mpc(*split, randomness=b"three-party test", **settings)  # type: ignore[arg-type]
    twin = train_logistic_regression_plain(*split, **settings)  # type: ignore[arg-type]

    assert result.num_parties == 3
    assert np.abs(_flat(result.model) - _flat(twin)).max() < 1e-3
    mpc_accuracy = logistic_accuracy(result.model, x_test, y_test)
    assert abs(mpc_accuracy - logistic_accuracy(twin, x_test, y_test)) * len(y_test) <= 1.0 + 1e-9
    # Two-party steps plus a truncation-pair round after each of the three products.
    assert result.rounds_per_iteration == MSB_ROUNDS + 2 + 3 == 10


def test_three_party_cubic_variant_trains() -> None:
    features, labels, x_test, y_test = _dataset("breast_cancer")
    rows, targets = np.concatenate(features), np.concatenate(labels)
    thirds = np.array_split(np.arange(len(rows)), 3)
    settings = {"epochs": 3, "batch_size": 32, "lr": 0.01, "sigmoid": "cubic", "seed": 7}
    split = ([rows[t] for t in thirds], [targets[t] for t in thirds])
    result = train_logistic_regression_mpc(*split, randomness=b"cubic", **settings)  # type: ignore[arg-type]
    twin = train_logistic_regression_plain(*split, **settings)  # type: ignore[arg-type]

    assert np.abs(_flat(result.model) - _flat(twin)).max() < 1e-3
    assert logistic_accuracy(result.model, x_test, y_test) > 0.85
    assert result.rounds_per_iteration == 10  # matmul, trunc, 2 products + 3 truncs, matmul, trunc, update trunc


def test_same_randomness_repeats_and_fresh_randomness_differs_only_in_rounding() -> None:
    features, labels, _, _ = _dataset("digits_0_vs_1")
    settings = {"epochs": 1, "batch_size": 32, "lr": 0.1, "seed": 3}
    first = train_logistic_regression_mpc(features, labels, randomness=b"r", **settings)  # type: ignore[arg-type]
    second = train_logistic_regression_mpc(features, labels, randomness=b"r", **settings)  # type: ignore[arg-type]
    fresh = train_logistic_regression_mpc(features, labels, **settings)  # type: ignore[arg-type]

    assert first.model == second.model
    assert np.abs(_flat(first.model) - _flat(fresh.model)).max() < 1e-3


def test_out_of_range_inputs_are_refused_not_wrapped() -> None:
    x = [np.full((3, 2), 2.0**48), np.zeros((3, 2))]
    y = [np.zeros(3), np.ones(3)]
    with pytest.raises(ValueError, match="cannot be encoded with fractional_bits=16"):
        train_logistic_regression_mpc(x, y, epochs=1, batch_size=2, lr=0.1, seed=0)
