"""Two or three computing parties holding a secret-shared logistic-regression model.

``SecureLogisticSession`` is the protocol state of SecureML-style training (Mohassel &
Zhang, IEEE S&P 2017): owners share rows, the dealer prepares each step offline, a
step runs on shares and only an explicit ``open_model`` reveals anything. Both
``train_logistic_regression_mpc`` and the ``mpc`` scheme's ``secureml`` backend drive it.

Every share, mask and triple comes from AES-CTR generators keyed by fresh OS entropy,
or, for a reproducible simulation, by hashes of caller-given secret ``randomness``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from defenses.mpc.protocol.beaver import (
    MpcParty,
    TripleShare,
    TruncationPair,
    TrustedDealer,
    open_shares,
    secure_matmul_premasked,
)
from defenses.mpc.protocol.channel import (
    Channel,
    decode_ring_arrays,
    encode_ring_arrays,
    framed_size,
)
from defenses.mpc.protocol.comparison import ComparisonDealer, SelectPreprocessing
from defenses.mpc.protocol.fixed_point import decode_fixed, encode_fixed
from defenses.mpc.protocol.prg import AesCtrPrg
from defenses.mpc.protocol.ring import RingArray, ring_add, ring_multiply, ring_subtract
from defenses.mpc.protocol.sharing import _check_party_count, reconstruct, share
from defenses.mpc.protocol.sigmoid import secure_cubic_sigmoid, secure_piecewise_sigmoid
from defenses.mpc.protocol.truncation import secure_truncate

__all__ = ["MaskedRows", "RowMask", "SecureLogisticSession", "SigmoidKind", "StepMaterial", "with_bias_column"]

SigmoidKind = Literal["piecewise", "cubic"]


def with_bias_column(features: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return ``features`` with a trailing column of ones (the bias input)."""
    return np.hstack([features, np.ones((features.shape[0], 1))])


def _prg_for(randomness: bytes | None, label: str) -> AesCtrPrg:
    """A PRG keyed by ``SHA-256(randomness, label)``, or by fresh OS entropy when ``randomness`` is ``None``."""
    if randomness is None:
        return AesCtrPrg()
    return AesCtrPrg(seed=hashlib.sha256(b"mpc-logreg:" + randomness + b":" + label.encode()).digest())


@dataclass(frozen=True)
class RowMask:
    """Dealer material masking a block of shared rows once (SecureML, Sec. 4.2).

    ``clear`` is the dealer's own ``A: [n, width]``, kept to derive later triples; each
    party receives only its share in ``shares``.
    """

    clear: RingArray
    shares: tuple[RingArray, ...]


@dataclass(frozen=True)
class MaskedRows:
    """Shared rows ready for training: ``opened = X - A`` is known to every party.

    ``mask_shares`` and ``label_shares`` hold each party's share of ``A`` and of the labels.
    """

    opened: RingArray
    mask_shares: tuple[RingArray, ...]
    label_shares: tuple[RingArray, ...]


@dataclass(frozen=True)
class StepMaterial:
    """Dealer material of one party for one mini-batch step (offline phase).

    ``truncations`` holds the truncation pairs (forward, backward, update, then three
    for the cubic sigmoid) when the parties cannot truncate locally; empty otherwise.
    """

    forward: TripleShare
    backward: TripleShare
    sigmoid_triples: tuple[TripleShare, ...]  # cubic only: x^2 and x^3
    select: SelectPreprocessing | None  # piecewise only
    truncations: tuple[TruncationPair, ...]


class SecureLogisticSession:
    """Two or three computing parties holding a secret-shared logistic-regression model.

    The building block of ``train_logistic_regression_mpc`` and of the ``mpc`` scheme's
    ``secureml`` backend: owners share rows (``share_rows``), the dealer prepares each
    step's material offline (``deal_step``, timed in ``dealer_seconds``), ``step`` runs
    one mini-batch gradient step on shares and ``open_model`` opens a model to every
    party. Nothing else is ever opened.

    Args:
        num_parties: 2 or 3 computing parties.
        width: model length, features plus one bias column.
        fractional_bits: fixed-point precision ``f`` of data, model and activations.
        extra_bits: public step sizes carry ``f + extra_bits`` fractional bits.
        sigmoid: ``"piecewise"`` (SecureML) or ``"cubic"``.
        randomness: 32+ secret bytes from which every share, mask and triple is derived
            (reproducible runs); ``None`` draws fresh OS entropy for each generator.
        channel: a channel to run on (e.g. one that records messages); a fresh one by default.

    Raises:
        ValueError: on an unsupported party count, precision or sigmoid.
    """

    def __init__(
        self,
        *,
        num_parties: int,
        width: int,
        fractional_bits: int = 16,
        extra_bits: int = 8,
        sigmoid: SigmoidKind = "piecewise",
        randomness: bytes | None = None,
        channel: Channel | None = None,
    ) -> None:
        _check_party_count("num_parties", num_parties)
        if not (0 < fractional_bits and fractional_bits + extra_bits <= 62 and extra_bits >= 0):
            raise ValueError(
                f"need 0 < fractional_bits, extra_bits >= 0 and fractional_bits + extra_bits <= 62, "
                f"got {fractional_bits} and {extra_bits}"
            )
        if sigmoid not in ("piecewise", "cubic"):
            raise ValueError(f"sigmoid must be 'piecewise' or 'cubic', got {sigmoid!r}")
        self.channel = channel or Channel(num_parties=num_parties)
        if self.channel.num_parties != num_parties:
            raise ValueError(f"the channel connects {self.channel.num_parties} parties, not {num_parties}")
        self.num_parties = num_parties
        self.width = width
        self.fractional_bits = fractional_bits
        self.constant_bits = fractional_bits + extra_bits
        self.sigmoid: SigmoidKind = sigmoid
        self.parties = [MpcParty(party_index=i, channel=self.channel) for i in range(num_parties)]
        self._randomness = randomness
        self._dealer = TrustedDealer(num_parties=num_parties, prg=_prg_for(randomness, "dealer"))
        self._comparison = ComparisonDealer(num_parties=num_parties, prg=_prg_for(randomness, "comparison"))
        self._owner_prgs: dict[str, AesCtrPrg] = {}
        self._zero_prg = _prg_for(randomness, "zero-sharing")
        self.dealer_seconds = 0.0
        self.outside_input_bytes = 0

    @property
    def truncates_locally(self) -> bool:
        """Two parties truncate locally (SecureML); three need dealer truncation pairs."""
        return self.num_parties == 2

    def encode_model(self, weights: NDArray[np.float64]) -> list[RingArray]:
        """Return shares of a public model ``[width]`` (party 0 holds its encoding, the rest zero)."""
        encoded = encode_fixed(np.asarray(weights, np.float64).reshape(self.width, 1), self.fractional_bits)
        return [encoded if p.party_index == 0 else np.zeros_like(encoded) for p in self.parties]

    def _encode_rows(
        self, owner: str, features: NDArray[np.float64], labels: NDArray[np.float64]
    ) -> tuple[list[RingArray], list[RingArray]]:
        rows = encode_fixed(with_bias_column(np.asarray(features, np.float64)), self.fractional_bits)
        targets = encode_fixed(np.asarray(labels, np.float64).reshape(-1, 1), self.fractional_bits)
        if rows.shape[1] != self.width:
            raise ValueError(f"rows have {rows.shape[1] - 1} features, the model expects {self.width - 1}")
        prg = self._owner_prgs.setdefault(owner, _prg_for(self._randomness, f"owner:{owner}"))
        return share(rows, self.num_parties, prg), share(targets, self.num_parties, prg)

    def share_rows(
        self, owner: str, features: NDArray[np.float64], labels: NDArray[np.float64]
    ) -> tuple[list[RingArray], list[RingArray]]:
        """An outside owner (an FL client outsourcing to the parties) shares rows and 0/1 labels.

        A bias column is appended. The owner's uploads, one share to each party, count
        in ``outside_input_bytes``; its shares come from its own generator.

        Returns:
            Per party, its shares of the rows ``[n, width]`` and of the labels ``[n, 1]``.
        """
        row_shares, label_shares = self._encode_rows(owner, features, labels)
        self.outside_input_bytes += self.num_parties * framed_size([row_shares[0].shape, label_shares[0].shape])
        return row_shares, label_shares

    def share_party_rows(
        self, features_per_party: Sequence[NDArray[np.float64]], labels_per_party: Sequence[NDArray[np.float64]]
    ) -> tuple[list[RingArray], list[RingArray]]:
        """Each party shares its own rows with the others (one round); return the shares of their union.

        Every party keeps one share of its rows and labels and sends one to each peer.
        The union is in public order: party 0's rows, then party 1's (then party 2's).

        Returns:
            Per party, its shares of all rows ``[N, width]`` and of all labels ``[N, 1]``.
        """
        encoded = [
            self._encode_rows(f"party{i}", x, y)
            for i, (x, y) in enumerate(zip(features_per_party, labels_per_party, strict=True))
        ]
        for owner, (row_shares, label_shares) in zip(self.parties, encoded, strict=True):
            for peer in owner.peers():
                payload = encode_ring_arrays([row_shares[peer], label_shares[peer]])
                self.channel.send(sender=owner.party_index, receiver=peer, payload=payload)
        x_shares: list[RingArray] = []
        y_shares: list[RingArray] = []
        for party in self.parties:
            rows: list[RingArray] = []
            labels: list[RingArray] = []
            for owner, (row_shares, label_shares) in zip(self.parties, encoded, strict=True):
                if owner.party_index == party.party_index:
                    rows.append(row_shares[party.party_index])
                    labels.append(label_shares[party.party_index])
                    continue
                message = self.channel.receive(receiver=party.party_index, sender=owner.party_index)
                got = decode_ring_arrays(message, [row_shares[0].shape, label_shares[0].shape])
                rows.append(got[0])
                labels.append(got[1])
            x_shares.append(np.concatenate(rows))
            y_shares.append(np.concatenate(labels))
        return x_shares, y_shares

    def deal_row_mask(self, num_rows: int) -> RowMask:
        """Offline phase: a uniform mask ``A: [num_rows, width]`` for ``open_masked_rows``."""
        started = time.perf_counter()
        clear = self._dealer.random_ring((num_rows, self.width))
        mask = RowMask(clear=clear, shares=tuple(self._dealer.share(clear)))
        self.dealer_seconds += time.perf_counter() - started
        return mask

    def open_masked_rows(
        self, x_shares: Sequence[RingArray], y_shares: Sequence[RingArray], mask: RowMask
    ) -> MaskedRows:
        """Open ``E = X - A`` to every party (one round); later products with ``X`` open only their right operand."""
        opened = open_shares(self.parties, [ring_subtract(x, a) for x, a in zip(x_shares, mask.shares, strict=True)])
        return MaskedRows(opened=opened[0], mask_shares=mask.shares, label_shares=tuple(y_shares))

    def deal_step(self, mask: RowMask, batch: NDArray[np.int64]) -> list[StepMaterial]:
        """Offline phase: every party's material for one step on rows ``batch`` of ``mask``'s block."""
        started = time.perf_counter()
        dealer, width, f = self._dealer, self.width, self.fractional_bits
        batch_rows = len(batch)
        left = mask.clear[batch]
        left_shares = [a[batch] for a in mask.shares]
        forward = dealer.matrix_triples_given_left(left, left_shares, (width, 1))
        backward = dealer.matrix_triples_given_left(
            np.ascontiguousarray(left.T), [np.ascontiguousarray(a.T) for a in left_shares], (batch_rows, 1)
        )
        if self.sigmoid == "piecewise":
            gates: list[list[TripleShare]] = []
            select: list[SelectPreprocessing] | None = self._comparison.select_preprocessing(2, (batch_rows, 1))
        else:
            gates = [dealer.elementwise_triples((batch_rows, 1)) for _ in range(2)]
            select = None
        pairs: list[list[TruncationPair]] = []
        if not self.truncates_locally:
            pairs = [
                dealer.truncation_pairs((batch_rows, 1), f),
                dealer.truncation_pairs((width, 1), f),
                dealer.truncation_pairs((width, 1), self.constant_bits),
            ]
            if self.sigmoid == "cubic":
                pairs += [dealer.truncation_pairs((batch_rows, 1), f) for _ in range(3)]
        material = [
            StepMaterial(
                forward=forward[i],
                backward=backward[i],
                sigmoid_triples=tuple(g[i] for g in gates),
                select=None if select is None else select[i],
                truncations=tuple(p[i] for p in pairs),
            )
            for i in range(self.num_parties)
        ]
        self.dealer_seconds += time.perf_counter() - started
        return material

    def deal_scaling(self, shape: tuple[int, ...]) -> list[TruncationPair] | None:
        """Offline phase: truncation pairs for one ``scale_public`` call (``None`` for two parties)."""
        if self.truncates_locally:
            return None
        started = time.perf_counter()
        pairs = self._dealer.truncation_pairs(shape, self.constant_bits)
        self.dealer_seconds += time.perf_counter() - started
        return pairs

    def scale_public(
        self, shares: Sequence[RingArray], factor: float, pairs: Sequence[TruncationPair] | None
    ) -> list[RingArray]:
        """Return shares of ``factor * x`` for a public real ``factor`` (encoded with ``f + extra_bits`` bits)."""
        constant = encode_fixed(np.array([factor]), self.constant_bits)
        products = [ring_multiply(s, constant) for s in shares]
        return secure_truncate(self.parties, products, fractional_bits=self.constant_bits, pairs=pairs)

    def step(
        self,
        w_shares: Sequence[RingArray],
        rows: MaskedRows,
        batch: NDArray[np.int64],
        material: Sequence[StepMaterial],
        step_size: float,
    ) -> list[RingArray]:
        """One gradient step ``w - step_size * X_B^T (sigmoid(X_B w) - y_B)`` on shares; return the new model's shares.

        ``material`` must come from ``deal_step`` with the same mask and ``batch``.
        """
        parties, f = self.parties, self.fractional_bits
        opened = rows.opened[batch]
        y_shares = [y[batch] for y in rows.label_shares]

        def pairs_for(which: int) -> list[TruncationPair] | None:
            return None if self.truncates_locally else [m.truncations[which] for m in material]

        def truncate(shares: Sequence[RingArray], which: int, bits: int) -> list[RingArray]:
            return secure_truncate(parties, shares, fractional_bits=bits, pairs=pairs_for(which))

        logits = truncate(secure_matmul_premasked(parties, opened, w_shares, [m.forward for m in material]), 0, f)
        if self.sigmoid == "piecewise":
            activations = secure_piecewise_sigmoid(
                parties, logits, [m.select for m in material if m.select is not None], fractional_bits=f
            )
        else:
            activations = secure_cubic_sigmoid(
                parties,
                logits,
                [m.sigmoid_triples[0] for m in material],
                [m.sigmoid_triples[1] for m in material],
                fractional_bits=f,
                truncation_pairs=None if self.truncates_locally else [m.truncations[3:6] for m in material],
            )
        residuals = [ring_subtract(s, y) for s, y in zip(activations, y_shares, strict=True)]
        backward = secure_matmul_premasked(
            parties, np.ascontiguousarray(opened.T), residuals, [m.backward for m in material]
        )
        gradients = truncate(backward, 1, f)
        updates = self.scale_public(gradients, step_size, pairs_for(2))
        return [ring_subtract(w, u) for w, u in zip(w_shares, updates, strict=True)]

    def open_model(self, w_shares: Sequence[RingArray]) -> NDArray[np.float64]:
        """Open a shared model to every party (one round) and return it decoded, ``[width]``.

        Raises:
            RuntimeError: if the parties reconstruct different values.
        """
        opened = open_shares(self.parties, w_shares)
        if any(not (o == opened[0]).all() for o in opened[1:]):
            raise RuntimeError("the parties opened different models")
        return decode_fixed(opened[0], self.fractional_bits).reshape(-1)

    def rerandomize(self, shares: Sequence[RingArray]) -> list[RingArray]:
        """Return the same secret under fresh uniform shares: each party adds its share of zero.

        The parties hold pairwise PRG keys agreed once (the correlated randomness of
        Mohassel & Rindal, "ABY3", CCS 2018, Sec. 2.2), so the zero-sharing costs no
        message; here one generator stands for those keys. Truncated shares are not
        uniform on the ring (a locally truncated share lies in ``[-2^(63-f), 2^(63-f))``),
        so what a party keeps between rounds is re-randomized.
        """
        zeros = share(np.zeros_like(shares[0]), self.num_parties, self._zero_prg)
        return [ring_add(s, z) for s, z in zip(shares, zeros, strict=True)]

    def reveal_for_simulation(self, w_shares: Sequence[RingArray]) -> NDArray[np.float64]:
        """Return the shared model decoded without any message: the simulator's ground truth, not a protocol step."""
        return decode_fixed(reconstruct(list(w_shares)), self.fractional_bits).reshape(-1)
