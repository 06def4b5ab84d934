"""Two-party logistic-regression training on secret shares (SecureML, Mohassel & Zhang, IEEE S&P 2017).

Setting (SecureML Sec. 4, horizontal split): each of the two parties owns some rows
``X_i`` and labels ``y_i``. Each owner fixed-point encodes its rows (a trailing column
of ones carries the bias) and labels, additively shares them in ``Z_(2^64)`` and sends
the other party its share through the ``Channel``. The model ``w`` starts as shares of
zero and stays shared; only the final model is opened.

One mini-batch step on a public batch ``B`` (a deterministic order drawn from ``seed``
over the union of rows, party 0's rows first), with ``f = fractional_bits``::

    u     = trunc_f(X_B @ w)                    secure_matmul, 1 round
    s     = sigmoid(u)                          piecewise (9 rounds) or cubic (2 rounds)
    g     = trunc_f(X_B^T @ (s - y_B))          secure_matmul, 1 round
    w    -= trunc_F(g * enc_F(lr / |B|))        local: public constant, F = f + extra_bits

``trunc`` is SecureML's local truncation (Theorem 1), applied after every fixed-point
product. The public step size ``lr / |B|`` is small: with ``f = 16`` bits
``0.01 / 32`` would encode as ``20 / 2^16``, 2.3% off. It is therefore encoded with
``F = f + extra_bits`` fractional bits (default 24: ``5243 / 2^24``, 0.01% off), and the
local product ``g * enc_F(lr / |B|)`` is truncated by ``F`` instead of ``f``.

Beaver triples and comparison material come from a trusted dealer in an offline phase
(all generated before training starts and timed separately as ``dealer_seconds``).

``train_logistic_regression_plain`` is the float64 twin: same sigmoid approximation,
same batches, same update, no fixed-point rounding. The MPC weights differ from the
twin's only by fixed-point rounding and truncation (about ``2^-f`` per step).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from defenses.mpc_protocol.beaver import (
    MpcParty,
    TripleShare,
    TrustedDealer,
    secure_matmul,
)
from defenses.mpc_protocol.channel import (
    Channel,
    decode_ring_arrays,
    encode_ring_arrays,
)
from defenses.mpc_protocol.comparison import ComparisonDealer, MsbPreprocessing
from defenses.mpc_protocol.fixed_point import decode_fixed, encode_fixed, truncate_share
from defenses.mpc_protocol.prg import AesCtrPrg
from defenses.mpc_protocol.ring import RingArray, ring_multiply, ring_subtract
from defenses.mpc_protocol.sharing import reconstruct, share
from defenses.mpc_protocol.sigmoid import (
    cubic_sigmoid,
    piecewise_sigmoid,
    secure_cubic_sigmoid,
    secure_piecewise_sigmoid,
)

__all__ = [
    "LogisticModel",
    "MpcTrainingResult",
    "SigmoidKind",
    "logistic_accuracy",
    "minibatch_schedule",
    "train_logistic_regression_mpc",
    "train_logistic_regression_plain",
]

SigmoidKind = Literal["piecewise", "cubic"]
_NUM_PARTIES = 2


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
    """Opened model plus the cost of the two-party training run.

    ``bytes_sent`` and ``rounds`` cover the whole protocol (input sharing, training,
    opening the model); the ``*_per_iteration`` fields cover one mini-batch step.
    """

    model: LogisticModel
    sigmoid: SigmoidKind
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
    if len(features_per_party) != _NUM_PARTIES or len(labels_per_party) != _NUM_PARTIES:
        raise ValueError(
            f"need rows and labels for exactly {_NUM_PARTIES} parties, "
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

    >>> [b.tolist() for b in minibatch_schedule(3, epochs=1, batch_size=2, seed=0)]
    [[2, 0], [1]]
    """
    rng = np.random.default_rng(seed)
    batches: list[NDArray[np.int64]] = []
    for _ in range(epochs):
        order = rng.permutation(num_rows).astype(np.int64)
        batches.extend(order[start : start + batch_size] for start in range(0, num_rows, batch_size))
    return batches


def _with_bias_column(features: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.hstack([features, np.ones((features.shape[0], 1))])


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
    x_all = _with_bias_column(features)
    w = np.zeros(x_all.shape[1])
    for batch in minibatch_schedule(x_all.shape[0], epochs=epochs, batch_size=batch_size, seed=seed):
        xb = x_all[batch]
        w = w - (lr / len(batch)) * (xb.T @ (activation(xb @ w) - labels[batch]))
    return LogisticModel(weights=tuple(float(v) for v in w[:-1]), bias=float(w[-1]))


def _derived_prg(seed: int, label: str) -> AesCtrPrg:
    return AesCtrPrg(seed=hashlib.sha256(f"mpc-logreg:{seed}:{label}".encode()).digest())


@dataclass(frozen=True)
class _StepMaterial:
    """Dealer material of one party for one mini-batch step."""

    forward: TripleShare
    backward: TripleShare
    sigmoid_triples: tuple[TripleShare, ...]
    msb: MsbPreprocessing | None


def _deal_step_material(
    batch_rows: int, width: int, sigmoid: SigmoidKind, dealer: TrustedDealer, comparison: ComparisonDealer
) -> list[_StepMaterial]:
    forward = dealer.matrix_triples((batch_rows, width), (width, 1))
    backward = dealer.matrix_triples((width, batch_rows), (batch_rows, 1))
    if sigmoid == "piecewise":
        gate = dealer.elementwise_triples((batch_rows, 1))
        msb = comparison.msb_preprocessing((2, batch_rows, 1))
        return [
            _StepMaterial(forward=forward[i], backward=backward[i], sigmoid_triples=(gate[i],), msb=msb[i])
            for i in range(_NUM_PARTIES)
        ]
    square = dealer.elementwise_triples((batch_rows, 1))
    cube = dealer.elementwise_triples((batch_rows, 1))
    return [
        _StepMaterial(forward=forward[i], backward=backward[i], sigmoid_triples=(square[i], cube[i]), msb=None)
        for i in range(_NUM_PARTIES)
    ]


def _share_inputs(
    parties: Sequence[MpcParty],
    channel: Channel,
    encoded_rows: Sequence[RingArray],
    encoded_labels: Sequence[RingArray],
    seed: int,
) -> tuple[list[RingArray], list[RingArray]]:
    """Each owner shares its rows and labels, keeping one share and sending the other (1 round)."""
    kept: list[list[RingArray]] = []
    for owner in parties:
        prg = _derived_prg(seed, f"owner{owner.party_index}")
        rows = encoded_rows[owner.party_index]
        labels = encoded_labels[owner.party_index]
        row_shares, label_shares = share(rows, _NUM_PARTIES, prg), share(labels, _NUM_PARTIES, prg)
        peer = 1 - owner.party_index
        channel.send(
            sender=owner.party_index,
            receiver=peer,
            payload=encode_ring_arrays([row_shares[peer], label_shares[peer]]),
        )
        kept.append([row_shares[owner.party_index], label_shares[owner.party_index]])
    x_shares: list[RingArray] = []
    y_shares: list[RingArray] = []
    for party in parties:
        peer = 1 - party.party_index
        shapes = [encoded_rows[peer].shape, encoded_labels[peer].shape]
        peer_rows, peer_labels = decode_ring_arrays(channel.receive(receiver=party.party_index, sender=peer), shapes)
        own_rows, own_labels = kept[party.party_index]
        # Union of rows in public order: party 0's rows, then party 1's.
        ordered_rows = [own_rows, peer_rows] if party.party_index == 0 else [peer_rows, own_rows]
        ordered_labels = [own_labels, peer_labels] if party.party_index == 0 else [peer_labels, own_labels]
        x_shares.append(np.concatenate(ordered_rows))
        y_shares.append(np.concatenate(ordered_labels))
    return x_shares, y_shares


def _open_to_all(parties: Sequence[MpcParty], channel: Channel, shares: Sequence[RingArray]) -> RingArray:
    """Both parties send their share to the other (1 round); return the reconstructed value."""
    for party, value in zip(parties, shares, strict=True):
        channel.send(sender=party.party_index, receiver=1 - party.party_index, payload=encode_ring_arrays([value]))
    opened = [
        reconstruct(
            [
                value,
                decode_ring_arrays(
                    channel.receive(receiver=party.party_index, sender=1 - party.party_index), [value.shape]
                )[0],
            ]
        )
        for party, value in zip(parties, shares, strict=True)
    ]
    if not (opened[0] == opened[1]).all():
        raise RuntimeError("the parties opened different models")
    return opened[0]


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
) -> MpcTrainingResult:
    """Train logistic regression on secret shares between two parties (SecureML, IEEE S&P 2017).

    Args:
        features_per_party: the two parties' rows, ``[n_i, d]`` each (horizontal split).
        labels_per_party: the matching 0/1 labels, ``[n_i]`` each.
        epochs, batch_size, lr: mini-batch gradient descent settings.
        fractional_bits: fixed-point precision ``f`` of data, model and activations.
        sigmoid: ``"piecewise"`` (SecureML's activation) or ``"cubic"`` (degree-3 fit).
        seed: drives the public batch order and all (test-reproducible) randomness.
        extra_bits: the public step ``lr / |B|`` is encoded with ``f + extra_bits``
            fractional bits, and its product truncated by as many.

    Returns:
        The opened model with bytes, rounds and seconds spent (see ``MpcTrainingResult``).

    Raises:
        ValueError: on malformed inputs or settings.
    """
    features, _ = _check_inputs(features_per_party, labels_per_party, epochs, batch_size, lr, sigmoid)
    constant_bits = fractional_bits + extra_bits
    if not (0 < fractional_bits and constant_bits <= 62):
        raise ValueError(f"need 0 < fractional_bits and fractional_bits + extra_bits <= 62, got {constant_bits}")
    width = features.shape[1] + 1
    batches = minibatch_schedule(features.shape[0], epochs=epochs, batch_size=batch_size, seed=seed)

    # Offline phase: the trusted dealer prepares every step's material up front.
    dealer_start = time.perf_counter()
    dealer = TrustedDealer(num_parties=_NUM_PARTIES, prg=_derived_prg(seed, "dealer"))
    comparison = ComparisonDealer(num_parties=_NUM_PARTIES, prg=_derived_prg(seed, "comparison"))
    material = [_deal_step_material(len(b), width, sigmoid, dealer, comparison) for b in batches]
    dealer_seconds = time.perf_counter() - dealer_start

    online_start = time.perf_counter()
    channel = Channel(num_parties=_NUM_PARTIES)
    parties = [MpcParty(party_index=i, channel=channel) for i in range(_NUM_PARTIES)]
    encoded_rows = [
        encode_fixed(_with_bias_column(np.asarray(x, np.float64)), fractional_bits) for x in features_per_party
    ]
    encoded_labels = [
        encode_fixed(np.asarray(y, np.float64).reshape(-1, 1), fractional_bits) for y in labels_per_party
    ]
    x_shares, y_shares = _share_inputs(parties, channel, encoded_rows, encoded_labels, seed)
    bytes_before, rounds_before = channel.bytes_sent, channel.rounds

    def truncate(shares: Sequence[RingArray], bits: int) -> list[RingArray]:
        return [
            truncate_share(s, party_index=p.party_index, num_parties=_NUM_PARTIES, fractional_bits=bits)
            for p, s in zip(parties, shares, strict=True)
        ]

    w_shares: list[RingArray] = [np.zeros((width, 1), np.uint64) for _ in parties]
    for batch, step in zip(batches, material, strict=True):
        xb = [x[batch] for x in x_shares]
        yb = [y[batch] for y in y_shares]
        logits = truncate(secure_matmul(parties, xb, w_shares, [m.forward for m in step]), fractional_bits)
        if sigmoid == "piecewise":
            activations = secure_piecewise_sigmoid(
                parties,
                logits,
                [m.msb for m in step if m.msb is not None],
                [m.sigmoid_triples[0] for m in step],
                fractional_bits=fractional_bits,
            )
        else:
            activations = secure_cubic_sigmoid(
                parties,
                logits,
                [m.sigmoid_triples[0] for m in step],
                [m.sigmoid_triples[1] for m in step],
                fractional_bits=fractional_bits,
            )
        residuals = [ring_subtract(s, y) for s, y in zip(activations, yb, strict=True)]
        gradients = truncate(
            secure_matmul(parties, [x.T.copy() for x in xb], residuals, [m.backward for m in step]),
            fractional_bits,
        )
        step_size = encode_fixed(np.array([lr / len(batch)]), constant_bits)
        updates = truncate([ring_multiply(g, step_size) for g in gradients], constant_bits)
        w_shares = [ring_subtract(w, u) for w, u in zip(w_shares, updates, strict=True)]
    bytes_training, rounds_training = channel.bytes_sent - bytes_before, channel.rounds - rounds_before

    weights = decode_fixed(_open_to_all(parties, channel, w_shares), fractional_bits).reshape(-1)
    online_seconds = time.perf_counter() - online_start
    return MpcTrainingResult(
        model=LogisticModel(weights=tuple(float(v) for v in weights[:-1]), bias=float(weights[-1])),
        sigmoid=sigmoid,
        fractional_bits=fractional_bits,
        iterations=len(batches),
        bytes_sent=channel.bytes_sent,
        rounds=channel.rounds,
        bytes_per_iteration=bytes_training / len(batches),
        rounds_per_iteration=rounds_training / len(batches),
        dealer_seconds=dealer_seconds,
        online_seconds=online_seconds,
    )


def logistic_accuracy(model: LogisticModel, features: NDArray[np.float64], labels: NDArray[np.float64]) -> float:
    """Return the fraction of rows whose predicted 0/1 label equals ``labels``."""
    return float(np.mean(model.predict(features) == np.asarray(labels).reshape(-1)))
