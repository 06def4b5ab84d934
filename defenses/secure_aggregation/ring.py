"""Fixed-point encoding of real vectors into the ring Z_(2^k) that secure aggregation sums in.

A client clips each coordinate to ``[-clip_range, clip_range]``, rounds it
stochastically (unbiased) to an integer multiple of ``step = clip_range / levels``,
multiplies it by its integer aggregation weight and stores it modulo ``2**k``; its
weight rides along as one extra ring element. Sums wrap modulo ``2**k``, so the
encoding reserves headroom: ``levels * (largest possible total weight of a round)``
must stay below ``2**(k-1)``, checked before any round runs. The decoded weighted sum
is then exact up to the rounding, at most ``step`` per coordinate of the mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from leakage.errors import ConfigError

__all__ = ["RingEncoding", "ring_dtype"]

MIN_PRECISION_BITS = 8
MAX_PRECISION_BITS = 52  # float64 represents every integer level exactly up to here


def ring_dtype(ring_bits: int) -> type[np.unsignedinteger]:
    """Return the unsigned word type that holds ``ring_bits``-bit ring elements."""
    return np.uint32 if ring_bits <= 32 else np.uint64


@dataclass(frozen=True)
class RingEncoding:
    """Maps real vectors to ``Z_(2^k)`` and back.

    Attributes:
        ring_bits: ``k``; the ring is the integers modulo ``2**k``.
        clip_range: coordinates are clipped to ``[-clip_range, clip_range]``.
        levels: clipped values become integers in ``[-levels, levels]``.
    """

    ring_bits: int
    clip_range: float
    levels: int

    @classmethod
    def fitting(
        cls,
        *,
        ring_bits: int,
        clip_range: float,
        max_total_weight: int,
        precision_bits: int | None = None,
    ) -> RingEncoding:
        """Return the encoding with the most precision whose sums cannot overflow.

        Args:
            ring_bits: ``k``.
            clip_range: the declared range of one coordinate.
            max_total_weight: the largest sum of integer weights one round can have.
            precision_bits: use ``levels = 2**precision_bits - 1`` (at most 52, so that
                float64 holds every level exactly); ``None`` takes the most that fits.

        Raises:
            ConfigError: the ring leaves fewer than 8 bits (or fewer than asked) of
                precision for this many clients; the message gives the ring size needed.

        >>> RingEncoding.fitting(ring_bits=32, clip_range=1.0, max_total_weight=100).levels
        21474836
        """
        capacity = (1 << (ring_bits - 1)) - 1
        wanted = MIN_PRECISION_BITS if precision_bits is None else precision_bits
        needed_bits = (max_total_weight * ((1 << wanted) - 1)).bit_length() + 1
        if max_total_weight * ((1 << wanted) - 1) > capacity:
            raise ConfigError(
                f"ring_bits={ring_bits} is too small: a round's sums reach total weight "
                f"{max_total_weight} x {(1 << wanted) - 1} levels ({wanted} bits of precision), "
                f"which needs ring_bits >= {needed_bits}"
            )
        if precision_bits is None:
            levels = min(capacity // max_total_weight, (1 << MAX_PRECISION_BITS) - 1)
        else:
            levels = (1 << precision_bits) - 1
        return cls(ring_bits=ring_bits, clip_range=float(clip_range), levels=int(levels))

    @property
    def step(self) -> float:
        """Spacing of the grid values are rounded to."""
        return self.clip_range / self.levels

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        """Word type of the ring elements."""
        return ring_dtype(self.ring_bits)

    def reduce(self, values: NDArray[np.unsignedinteger]) -> NDArray[np.unsignedinteger]:
        """Reduce words modulo ``2**k`` in place (a no-op for 32- and 64-bit rings) and return them."""
        if self.ring_bits not in (32, 64):
            np.bitwise_and(values, self.dtype((1 << self.ring_bits) - 1), out=values)
        return values

    def encode(
        self, values: Tensor, weights: Tensor, generator: torch.Generator
    ) -> tuple[NDArray[np.unsignedinteger], Tensor]:
        """Return ``(ring [C, P + 1], clipped [C])``: weighted integer inputs and clip counts.

        Args:
            values: ``[C, P]`` real vectors, one per client.
            weights: ``[C]`` non-negative integer weights.
            generator: randomness for the stochastic rounding (client-side).

        Returns:
            Row ``i`` holds ``w_i * round(clip(x_i) / step)`` then ``w_i``, modulo ``2**k``;
            ``clipped[i]`` counts the coordinates of client ``i`` that were clipped.
        """
        scaled = values.to(torch.float64)
        clipped = (scaled.abs() > self.clip_range).sum(dim=1)
        scaled = scaled.clamp(-self.clip_range, self.clip_range) / self.step
        noise = torch.rand(scaled.shape, generator=generator, dtype=torch.float64)
        integers = torch.floor(scaled + noise).to(torch.int64)
        integers = integers.clamp_(-self.levels, self.levels) * weights.to(torch.int64)[:, None]
        ring = np.empty((values.shape[0], values.shape[1] + 1), dtype=np.int64)
        ring[:, :-1] = integers.numpy()
        ring[:, -1] = weights.to(torch.int64).numpy()
        words = self.reduce(ring.view(np.uint64).astype(self.dtype))  # two's complement wraps
        return words, clipped

    def decode_sum(self, total: NDArray[np.unsignedinteger]) -> tuple[Tensor, int]:
        """Return ``(sum_i w_i x_i as float64 [P], sum_i w_i)`` from a ring sum ``[P + 1]``."""
        words = self.reduce(total.copy()).astype(np.uint64)
        half = np.uint64(1 << (self.ring_bits - 1))
        signed = words.astype(np.int64)
        if self.ring_bits == 64:
            pass  # the int64 view of a 64-bit word is already its signed value
        else:
            signed = np.where(words >= half, signed - (1 << self.ring_bits), signed)
        weighted = torch.from_numpy(signed[:-1].astype(np.float64) * self.step)
        return weighted, int(signed[-1])
