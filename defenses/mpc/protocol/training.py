"""Logistic-regression training on secret shares among 2 or 3 parties (SecureML, Mohassel & Zhang, IEEE S&P 2017).

Setting (SecureML Sec. 4, horizontal split): each party owns some rows
``X_i`` and labels ``y_i``. Each owner fixed-point encodes its rows (a trailing column
of ones carries the bias) and labels, additively shares them in ``Z_(2^64)`` and sends
each other party its share through the ``Channel``. The model ``w`` starts as shares of
zero and stays shared; only the final model is opened.

One mini-batch step on a public batch ``B`` (a deterministic order drawn from ``seed``
over the union of rows, party 0's rows first), with ``f = fractional_bits``::

    u     = trunc_f(X_B @ w)                    secure_matmul_premasked, 1 round
    s     = sigmoid(u)                          piecewise (5 rounds) or cubic (2 rounds)
    g     = trunc_f(X_B^T @ (s - y_B))          secure_matmul_premasked, 1 round
    w    -= trunc_F(g * enc_F(lr / |B|))        local: public constant, F = f + extra_bits

``trunc`` follows every fixed-point product: SecureML's local truncation (Theorem 1) for
two parties, free; an ABY3 truncation pair for three, one round each (10 rounds per
piecewise step instead of 7).

The data matrix is masked once (SecureML Sec. 4.2): ``E = X - A`` is opened right after
the input sharing, and every product with a batch of ``X`` or ``X^T`` then opens only
its right operand. The public step size ``lr / |B|`` is small: with ``f = 16`` bits
``0.01 / 32`` would encode as ``20 / 2^16``, 2.3% off. It is therefore encoded with
``F = f + extra_bits`` fractional bits (default 24: ``5243 / 2^24``, 0.01% off), and the
local product ``g * enc_F(lr / |B|)`` is truncated by ``F`` instead of ``f``.

Beaver triples, comparison material and truncation pairs come from a trusted dealer in an
offline phase (all generated before training starts and timed separately as
``dealer_seconds``). Every share, mask and triple comes from AES-CTR generators keyed by
fresh OS entropy, or, for a reproducible simulation, by hashes of caller-given secret
``randomness``.

``train_logistic_regression_plain`` is the float64 twin: same sigmoid approximation,
same batches, same update, no fixed-point rounding. The MPC weights differ from the
twin's only by fixed-point rounding and truncation (about ``2^-f`` per step).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from defenses.mpc.protocol.channel import Channel
from defenses.mpc.protocol.session import (
    SecureLogisticSession,
    SigmoidKind,
    with_bias_column,
)
from defenses.mpc.protocol.sharing import SUPPORTED_PARTIES
from defenses.mpc.protocol.sigmoid import cubic_sigmoid, piecewise_sigmoid
from leakage.simulation import batch_schedule

__all__ = [
    "LogisticModel",
    "MpcTrainingResult",
    "logistic_accuracy",
    "minibatch_schedule",
    "train_logistic_regression_mpc",
    "train_logistic_regression_plain",
]


@dataclass(frozen=True)
class LogisticModel:
    """Opened logistic-regression model: ``P(y = 1 | x) ~ sigmoid(x @ weights + bias)``."""

    weights: tuple[float, ...]
    bias: float

    def decision(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return ``features @ weights + bias``."""
        result: NDArray[np.float64] = np.asarray(features, np.float64) @ np.asarray(self.weights) + self.bias
        return result

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.int64]:
        """Return 0/1 labels: 1 where the decision value is positive (sigmoid above 1/2)."""
        return (self.decision(features) > 0.0).astype(np.int64)


@dataclass(frozen=True)
class MpcTrainingResult:
    """Opened model plus the cost of the training run.

    ``bytes_sent`` and ``rounds`` cover the whole protocol (input sharing, training,
    opening the model); the ``*_per_iteration`` fields cover one mini-batch step.
    """

    model: LogisticModel
    sigmoid: SigmoidKind
    num_parties: int
    fractional_bits: int
    iterations: int
    bytes_sent: int
    rounds: int
    bytes_per_iteration: float
    rounds_per_iteration: float
    dealer_seconds: float
    online_seconds: float

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-friendly dict of every field (the model as ``weights`` and ``bias``)."""
        result = asdict(self)
        model = result.pop("model")
        result["weights"] = list(model["weights"])
        result["bias"] = model["bias"]
        return result


def _check_inputs(
    features_per_party: Sequence[NDArray[np.float64]],
    labels_per_party: Sequence[NDArray[np.float64]],
    epochs: int,
    batch_size: int,
    lr: float,
    sigmoid: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if len(features_per_party) not in SUPPORTED_PARTIES or len(labels_per_party) != len(features_per_party):
        raise ValueError(
            f"need rows and labels for {' or '.join(map(str, SUPPORTED_PARTIES))} parties, "
            f"got {len(features_per_party)} and {len(labels_per_party)}"
        )
    if epochs < 1 or batch_size < 1 or not lr > 0.0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    if sigmoid not in ("piecewise", "cubic"):
        raise ValueError(f"sigmoid must be 'piecewise' or 'cubic', got {sigmoid!r}")
    xs = [np.asarray(x, np.float64) for x in features_per_party]
    ys = [np.asarray(y, np.float64).reshape(-1) for y in labels_per_party]
    widths = {x.shape[1] if x.ndim == 2 else -1 for x in xs}
    if len(widths) != 1 or -1 in widths:
        raise ValueError(f"features must be 2-D with one column count, got shapes {[x.shape for x in xs]}")
    for x, y in zip(xs, ys, strict=True):
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"each party needs >= 1 row and one label per row, got {x.shape} and {y.shape}")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("labels must be 0 or 1")
    return np.concatenate(xs), np.concatenate(ys)


def minibatch_schedule(num_rows: int, *, epochs: int, batch_size: int, seed: int) -> list[NDArray[np.int64]]:
    """Return the public batch order: per epoch a ``seed``-driven permutation cut into batches.

    The cut is the toolkit's one batch rule (:func:`leakage.simulation.batch_schedule`),
    the same the simulator and the attacks use.

    >>> [b.tolist() for b in minibatch_schedule(3, epochs=1, batch_size=2, seed=0)]
    [[2, 0], [1]]
    """
    rng = np.random.default_rng(seed)
    batches: list[NDArray[np.int64]] = []
    for _ in range(epochs):
        order = rng.permutation(num_rows).astype(np.int64)
        batches.extend(order[step] for step in batch_schedule(num_rows, batch_size=batch_size))
    return batches


def train_logistic_regression_plain(
    features_per_party: Sequence[NDArray[np.float64]],
    labels_per_party: Sequence[NDArray[np.float64]],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    sigmoid: SigmoidKind = "piecewise",
    seed: int,
) -> LogisticModel:
    """Float64 twin of ``train_logistic_regression_mpc``: same sigmoid approximation and batches.

    Mini-batch gradient descent ``w -= lr / |B| * X_B^T (sigmoid(X_B w) - y_B)`` as in
    SecureML (Mohassel & Zhang, IEEE S&P 2017, Sec. 4.3), weights and bias from zero.
    """
    features, labels = _check_inputs(features_per_party, labels_per_party, epochs, batch_size, lr, sigmoid)
    activation: Callable[[NDArray[np.float64]], NDArray[np.float64]] = (
        piecewise_sigmoid if sigmoid == "piecewise" else cubic_sigmoid
    )
    x_all = with_bias_column(features)
    w = np.zeros(x_all.shape[1])
    for batch in minibatch_schedule(x_all.shape[0], epochs=epochs, batch_size=batch_size, seed=seed):
        xb = x_all[batch]
        w = w - (lr / len(batch)) * (xb.T @ (activation(xb @ w) - labels[batch]))
    return LogisticModel(weights=tuple(float(v) for v in w[:-1]), bias=float(w[-1]))


def train_logistic_regression_mpc(
    features_per_party: Sequence[NDArray[np.float64]],
    labels_per_party: Sequence[NDArray[np.float64]],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    fractional_bits: int = 16,
    sigmoid: SigmoidKind = "piecewise",
    seed: int,
    extra_bits: int = 8,
    randomness: bytes | None = None,
    channel: Channel | None = None,
) -> MpcTrainingResult:
    """Train logistic regression on secret shares among two or three parties (SecureML, IEEE S&P 2017).

    Args:
        features_per_party: each party's rows, ``[n_i, d]`` (horizontal split); two or
            three parties.
        labels_per_party: the matching 0/1 labels, ``[n_i]`` each.
        epochs, batch_size, lr: mini-batch gradient descent settings.
        fractional_bits: fixed-point precision ``f`` of data, model and activations.
        sigmoid: ``"piecewise"`` (SecureML's activation) or ``"cubic"`` (degree-3 fit).
        seed: drives the public batch order.
        extra_bits: the public step ``lr / |B|`` is encoded with ``f + extra_bits``
            fractional bits, and its product truncated by as many.
        randomness: secret bytes from which all shares, masks and triples derive (a
            reproducible run); ``None`` (the default) uses fresh OS entropy, as a
            deployment must.
        channel: run on this channel (e.g. one that records messages).

    Returns:
        The opened model with bytes, rounds and seconds spent (see ``MpcTrainingResult``).

    Raises:
        ValueError: on malformed inputs or settings.
    """
    features, _ = _check_inputs(features_per_party, labels_per_party, epochs, batch_size, lr, sigmoid)
    session = SecureLogisticSession(
        num_parties=len(features_per_party),
        width=features.shape[1] + 1,
        fractional_bits=fractional_bits,
        extra_bits=extra_bits,
        sigmoid=sigmoid,
        randomness=randomness,
        channel=channel,
    )
    batches = minibatch_schedule(features.shape[0], epochs=epochs, batch_size=batch_size, seed=seed)
    # Offline phase, before any input: the data mask and every step's material.
    mask = session.deal_row_mask(features.shape[0])
    material = [session.deal_step(mask, batch) for batch in batches]

    channel = session.channel
    bytes_start, rounds_start = channel.bytes_sent, channel.rounds
    online_start = time.perf_counter()
    rows = session.open_masked_rows(*session.share_party_rows(features_per_party, labels_per_party), mask)
    bytes_before, rounds_before = channel.bytes_sent, channel.rounds
    w_shares = session.encode_model(np.zeros(session.width))
    for batch, step in zip(batches, material, strict=True):
        w_shares = session.step(w_shares, rows, batch, step, lr / len(batch))
    bytes_training, rounds_training = channel.bytes_sent - bytes_before, channel.rounds - rounds_before
    weights = session.open_model(w_shares)
    online_seconds = time.perf_counter() - online_start
    return MpcTrainingResult(
        model=LogisticModel(weights=tuple(float(v) for v in weights[:-1]), bias=float(weights[-1])),
        sigmoid=sigmoid,
        num_parties=session.num_parties,
        fractional_bits=fractional_bits,
        iterations=len(batches),
        bytes_sent=channel.bytes_sent - bytes_start,
        rounds=channel.rounds - rounds_start,
        bytes_per_iteration=bytes_training / len(batches),
        rounds_per_iteration=rounds_training / len(batches),
        dealer_seconds=session.dealer_seconds,
        online_seconds=online_seconds,
    )


def logistic_accuracy(model: LogisticModel, features: NDArray[np.float64], labels: NDArray[np.float64]) -> float:
    """Return the fraction of rows whose predicted 0/1 label equals ``labels``."""
    return float(np.mean(model.predict(features) == np.asarray(labels).reshape(-1)))
