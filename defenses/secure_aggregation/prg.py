"""Mask expansion: AES-256 in counter mode as the PRG that turns a 32-byte seed into a mask.

Bonawitz et al. (CCS 2017) expand each agreed secret ``s_uv`` and each self-mask seed
``b_u`` into a vector of ring elements with a PRG. A block cipher in counter mode
keyed by the seed is the standard choice: every bit of the 256-bit key matters (no
folding into a 32-bit RNG seed, which would make masks brute-forceable). Output is
streamed in chunks into one reused buffer, so expansion runs at cipher speed and
never allocates a mask-sized temporary.
"""

from __future__ import annotations

import time

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

__all__ = ["MaskExpander", "expand_mask"]

_COUNTER = modes.CTR(bytes(16))  # each key expands exactly one mask, so a fixed counter start is safe
_CHUNK_BYTES = 1 << 19


class MaskExpander:
    """Adds or subtracts PRG masks into a ring vector, reusing one chunk buffer.

    Args:
        length: ring elements per mask.
        dtype: ``numpy.uint32`` or ``numpy.uint64``; arithmetic wraps modulo ``2**32``
            or ``2**64``, which a power-of-two ring of fewer bits divides.

    >>> import numpy as np
    >>> expander = MaskExpander(5, np.uint32)
    >>> total = np.zeros(5, np.uint32)
    >>> expander.add(total, bytes(32), sign=1)
    >>> expander.add(total, bytes(32), sign=-1)
    >>> int(total.sum())
    0
    """

    def __init__(self, length: int, dtype: type[np.unsignedinteger]) -> None:
        self.length = length
        self.dtype = np.dtype(dtype)
        itemsize = self.dtype.itemsize
        self._chunk_items = max(1, _CHUNK_BYTES // itemsize)
        chunk_bytes = min(self._chunk_items, length) * itemsize
        self._zeros = memoryview(bytes(chunk_bytes))
        # update_into wants room for one extra block beyond the input.
        self._buffer = bytearray(chunk_bytes + 16)
        self._words = np.frombuffer(self._buffer, dtype=np.uint8)[:chunk_bytes].view(self.dtype)
        self.bytes_generated = 0
        self.seconds = 0.0  # time spent in add(): expansion plus accumulation

    def add(self, total: NDArray[np.unsignedinteger], seed: bytes, *, sign: int) -> None:
        """Add ``sign * PRG(seed)`` to ``total`` in place (``sign`` is +1 or -1)."""
        started = time.perf_counter()
        encryptor = Cipher(algorithms.AES(seed), _COUNTER).encryptor()
        operation = np.add if sign > 0 else np.subtract
        if self.length <= self._chunk_items:  # one chunk: no slicing on the hot path
            encryptor.update_into(self._zeros, self._buffer)
            operation(total, self._words, out=total)
        else:
            for start in range(0, self.length, self._chunk_items):
                stop = min(start + self._chunk_items, self.length)
                count = stop - start
                encryptor.update_into(self._zeros[: count * self.dtype.itemsize], self._buffer)
                operation(total[start:stop], self._words[:count], out=total[start:stop])
        self.bytes_generated += self.length * self.dtype.itemsize
        self.seconds += time.perf_counter() - started


def expand_mask(seed: bytes, length: int, dtype: type[np.unsignedinteger]) -> NDArray[np.unsignedinteger]:
    """Return ``PRG(seed)`` as ``length`` ring elements of ``dtype``.

    >>> import numpy as np
    >>> a = expand_mask(bytes(32), 4, np.uint32)
    >>> bool((a == expand_mask(bytes(32), 4, np.uint32)).all()), a.dtype.name
    (True, 'uint32')
    """
    mask = np.zeros(length, dtype=dtype)
    MaskExpander(length, dtype).add(mask, seed, sign=1)
    return mask
