"""Independent, reproducible random streams derived from one experiment seed.

Every stream is addressed by a path of small integers (a role, then for example a
round and a client), so adding a client or a round never reshuffles the others.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Stream", "hashed_permutations", "numpy_rng", "torch_generator"]

# Stable role numbers: never renumber, only append.
class Stream:
    """Role numbers used as the first element of a stream path."""

    PARTITION = 0
    MODEL_INIT = 1
    SAMPLING = 2
    DROPOUT = 3
    LOCAL_DATA = 4
    SCHEME = 5
    DATASET = 6
    ATTACK = 7


def _sequence(seed: int, path: tuple[int, ...]) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=path)


def numpy_rng(seed: int, *path: int) -> np.random.Generator:
    """Return a numpy generator for the stream ``path`` of experiment ``seed``.

    >>> int(numpy_rng(0, 1, 2).integers(100)) == int(numpy_rng(0, 1, 2).integers(100))
    True
    """
    return np.random.default_rng(_sequence(seed, path))


def torch_generator(seed: int, *path: int) -> torch.Generator:
    """Return a CPU torch generator for the stream ``path`` of experiment ``seed``."""
    state = _sequence(seed, path).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective, well-mixing map of uint64 arrays."""
    with np.errstate(over="ignore"):
        values = values + np.uint64(0x9E3779B97F4A7C15)
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        mixed: np.ndarray = values ^ (values >> np.uint64(31))
        return mixed


def hashed_permutations(seed: int, path: tuple[int, ...], ids: np.ndarray, length: int) -> np.ndarray:
    """Return one random permutation of ``range(length)`` per id, ``[len(ids), length]``.

    Row ``i`` depends only on ``(seed, path, ids[i])``: it is the argsort of
    counter-based hash values, so adding or removing an id never changes another
    row, and all rows are drawn in one vectorised pass (data shuffling for
    thousands of clients without creating thousands of generators). Not for secrets.

    >>> rows = hashed_permutations(0, (4, 1), np.array([3, 5]), 6)
    >>> sorted(rows[0].tolist()) == list(range(6))
    True
    >>> bool((hashed_permutations(0, (4, 1), np.array([5]), 6) == rows[1]).all())
    True
    """
    state = np.uint64(int(_sequence(seed, path).generate_state(1, dtype=np.uint64)[0]))
    client_keys = _splitmix64(ids.astype(np.uint64) ^ state)
    positions = np.arange(length, dtype=np.uint64)
    with np.errstate(over="ignore"):
        keys = _splitmix64(client_keys[:, None] * np.uint64(0xD6E8FEB86659FD93) + positions[None, :])
    permutations: np.ndarray = np.argsort(keys, axis=1, kind="stable")
    return permutations
