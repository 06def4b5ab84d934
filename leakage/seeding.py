"""Independent, reproducible random streams derived from one experiment seed.

Every stream is addressed by a path of small integers (a role, then for example a
round and a client), so adding a client or a round never reshuffles the others.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["numpy_rng", "torch_generator", "Stream"]

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
