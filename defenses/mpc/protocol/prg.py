"""Cryptographic pseudorandom generator for protocol randomness: AES-256 in CTR mode.

Shares, masks and Beaver triples must be uniform on ``Z_(2^64)`` and unpredictable,
so they come from a cryptographic PRG and never from numpy's simulation generators.
The keystream ``AES-256-CTR(seed, nonce = 0^128)`` is read as little-endian ``uint64``
words; with a fresh 32-byte key per generator the all-zero nonce is never reused.
"""

from __future__ import annotations

import math
import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from defenses.mpc.protocol.ring import RingArray

__all__ = ["SEED_BYTES", "AesCtrPrg"]

SEED_BYTES: int = 32
_WORD_BYTES = 8


class AesCtrPrg:
    """Stream of uniform ring elements drawn from AES-256-CTR keyed by a 32-byte seed.

    Args:
        seed: 32-byte AES key. ``None`` draws a fresh one with ``os.urandom``; tests
            pass a fixed seed to get exact repeats.

    Raises:
        ValueError: if ``seed`` is not exactly 32 bytes.

    >>> prg = AesCtrPrg(seed=bytes(32))
    >>> prg.random_ring((2, 3)).shape
    (2, 3)
    >>> bool((AesCtrPrg(seed=bytes(32)).random_ring((4,)) == AesCtrPrg(seed=bytes(32)).random_ring((4,))).all())
    True
    """

    def __init__(self, *, seed: bytes | None = None) -> None:
        key = os.urandom(SEED_BYTES) if seed is None else seed
        if not isinstance(key, bytes) or len(key) != SEED_BYTES:
            raise ValueError(f"seed must be {SEED_BYTES} bytes or None, got {seed!r:.60}")
        self._encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def random_bytes(self, num_bytes: int) -> bytes:
        """Return the next ``num_bytes`` bytes of the keystream."""
        if num_bytes < 0:
            raise ValueError(f"num_bytes must be >= 0, got {num_bytes}")
        return self._encryptor.update(bytes(num_bytes))

    def random_bits(self, shape: tuple[int, ...]) -> NDArray[np.uint8]:
        """Return a ``uint8`` array of the given shape with independent uniform bits (0 or 1)."""
        count = math.prod(shape)
        packed = np.frombuffer(self.random_bytes(-(-count // 8)), dtype=np.uint8)
        return np.unpackbits(packed, count=count, bitorder="little").reshape(shape)

    def random_ring(self, shape: tuple[int, ...]) -> RingArray:
        """Return an array of the given shape with independent uniform ``Z_(2^64)`` entries."""
        count = math.prod(shape)
        words = np.frombuffer(self.random_bytes(count * _WORD_BYTES), dtype="<u8")
        return words.astype(np.uint64).reshape(shape)
