"""A party's received messages have the same distribution whichever dataset the other party holds.

Simulation-based security of the training protocol says party 1's view (everything it
receives, short of the opened final model, which is the output) can be produced
without party 0's data. We test the consequence a user can check: runs in which party 0
holds dataset A and runs in which it holds a very different dataset B give party 1
transcripts with the same distribution, byte position by byte position (a chi-square
two-sample test on the top nibble of each byte, Bonferroni-corrected over positions).

The negative control weakens the owners' sharing to masks of 16 random bits, too short
for data encoded at about 2^16 to 2^18: the top bits of a sent share then follow the
secret's sign, and the same test must reject.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.stats import chi2

from defenses.mpc.protocol import (
    AesCtrPrg,
    Channel,
    RingArray,
    ring_subtract,
    ring_sum,
    train_logistic_regression_mpc,
)
from defenses.mpc.protocol import session as session_module

_RUNS = 150
_ALPHA = 0.01


def _party_zero_data(kind: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rows = np.linspace(0.2, 1.5, 24).reshape(8, 3)
    if kind == "A":
        return rows, np.ones(8)
    return -rows[::-1] * 3.0, np.zeros(8)  # other signs, magnitudes and labels


def _party_one_data() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rows = np.cos(np.arange(24.0)).reshape(8, 3)
    return rows, (rows[:, 0] > 0).astype(np.float64)


def _received_by_party_one(kind: str, run: int, num_parties: int) -> NDArray[np.uint8]:
    """Concatenated payload bytes party 1 receives, without the final model opening (the output)."""
    own = [_party_zero_data(kind), _party_one_data(), _party_one_data()][:num_parties]
    channel = Channel(num_parties=num_parties, record=True)
    randomness = hashlib.sha256(f"{kind}:{run}".encode()).digest()
    train_logistic_regression_mpc(
        [x for x, _ in own], [y for _, y in own], epochs=1, batch_size=4, lr=0.1, seed=0,
        randomness=randomness, channel=channel,
    )
    received = [payload for _, receiver, payload in channel.log if receiver == 1]
    output_messages = num_parties - 1  # the last round opens the model: one message from each peer
    return np.frombuffer(b"".join(received[:-output_messages]), dtype=np.uint8)


def _min_p_value(first: NDArray[np.uint8], second: NDArray[np.uint8]) -> tuple[float, int]:
    """Smallest per-position chi-square homogeneity p-value (top nibble) over byte positions that vary.

    The usual 2 x k contingency statistic, computed for every position at once; bins
    empty in both samples are dropped from the degrees of freedom.
    """
    cells = np.arange(16)
    counts = np.stack(
        [((sample[:, :, None] >> 4) == cells).sum(axis=0) for sample in (first, second)]
    ).astype(np.float64)  # [2, positions, 16]
    totals = counts.sum(axis=(0, 2), keepdims=True)
    expected = counts.sum(axis=2, keepdims=True) * counts.sum(axis=0, keepdims=True) / totals
    statistic = np.where(expected > 0, (counts - expected) ** 2 / np.where(expected > 0, expected, 1.0), 0.0)
    dof = (counts.sum(axis=0) > 0).sum(axis=1) - 1  # [positions]
    varying = dof >= 1  # a constant byte (frame headers) is identical in both samples
    p_values = chi2.sf(statistic.sum(axis=(0, 2))[varying], dof[varying])
    return float(p_values.min()), int(varying.sum())


def _two_sample_rejects(num_parties: int, runs: int = _RUNS) -> bool:
    first = np.stack([_received_by_party_one("A", run, num_parties) for run in range(runs)])
    second = np.stack([_received_by_party_one("B", run, num_parties) for run in range(runs)])
    assert first.shape == second.shape  # the message sizes are public and equal
    smallest, tested = _min_p_value(first, second)
    return smallest < _ALPHA / tested


def _weak_share(secret: RingArray, parties: int, prg: AesCtrPrg) -> list[RingArray]:
    """An additive sharing whose masks have only 16 random bits."""
    masks = [prg.random_ring(secret.shape) & np.uint64(2**16 - 1) for _ in range(parties - 1)]
    return [*masks, ring_subtract(secret, ring_sum(masks))]


@pytest.mark.parametrize(("num_parties", "runs"), [(2, _RUNS), (3, 80)])
def test_received_messages_do_not_depend_on_the_other_partys_data(num_parties: int, runs: int) -> None:
    assert not _two_sample_rejects(num_parties, runs)


def test_two_sample_test_catches_a_weakened_sharing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "share", _weak_share)  # the owners' sharing of their rows
    assert _two_sample_rejects(2, runs=50)
