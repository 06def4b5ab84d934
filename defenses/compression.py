"""``compression``: top-k sparsification or stochastic low-bit quantisation on the client.

Each sampled client compresses its flat update ``u`` (length ``P``) before upload, so
the protocol that follows (``plain``, ``secagg``...) and every observer but the
client itself only ever handle the decompressed vector the server reconstructs.

- ``method="topk"`` keeps the ``k = max(1, round(keep * P))`` coordinates of largest
  magnitude and zeros the rest (Aji & Heafield, "Sparse Communication for Distributed
  Gradient Descent", EMNLP 2017; Lin et al., "Deep Gradient Compression", ICLR 2018).
  This is the gradient-pruning defense of Zhu et al., "Deep Leakage from Gradients",
  NeurIPS 2019, with pruning ratio ``p = 1 - keep``.
- ``method="quantize"`` rounds stochastically and without bias onto a grid scaled by
  the client's ``M = max_j |u_j|`` (QSGD: Alistarh et al., NeurIPS 2017); see
  :func:`stochastic_quantize` for the grid and the 1-bit case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

from leakage.aggregation import (
    MECHANISMS,
    AggregationScheme,
    ClientMechanism,
    MechanismOutput,
    RoundContext,
)
from leakage.checks import require_choice, require_in_interval, require_int, require_positive_float
from leakage.errors import ConfigError
from leakage.views import PublicValue

__all__ = [
    "Compression",
    "CompressionMethod",
    "QuantizedUpdates",
    "kept_coordinates",
    "stochastic_quantize",
    "topk_sparsify",
]

CompressionMethod = Literal["topk", "quantize"]
_METHODS: tuple[CompressionMethod, ...] = get_args(CompressionMethod)
_DEFAULT_KEEP = 0.1
_DEFAULT_BITS = 8
_MAX_BITS = 16  # levels must fit the int16 codes
_INDEX_BYTES = 4  # top-k sends int32 coordinate indices


def kept_coordinates(num_parameters: int, keep: float) -> int:
    """Return ``k = max(1, round(keep * P))``, the coordinates top-k keeps of ``P``.

    Rounding to the nearest integer (not up) keeps ``keep = 0.1`` of ``P = 650`` at 65,
    where ``0.1 * 650`` is ``65.00000000000001`` in floating point.

    >>> kept_coordinates(650, 0.1), kept_coordinates(650, 1.0), kept_coordinates(3, 0.01)
    (65, 650, 1)
    """
    return max(1, min(num_parameters, round(keep * num_parameters)))


def topk_sparsify(updates: Tensor, keep: float) -> Tensor:
    """Return ``updates`` ``[C, P]`` with all but each row's ``k`` largest magnitudes zeroed.

    ``k`` is :func:`kept_coordinates` of ``P``; kept values are copied bit for bit, so
    ``keep = 1`` returns an exact copy. Among equal magnitudes at the threshold,
    ``torch.topk`` decides which are kept.

    >>> topk_sparsify(torch.tensor([[0.5, -3.0, 1.0, 0.1]]), keep=0.5)
    tensor([[ 0., -3.,  1.,  0.]])
    """
    k = kept_coordinates(updates.shape[-1], keep)
    indices = updates.abs().topk(k, dim=-1).indices
    return torch.zeros_like(updates).scatter_(-1, indices, updates.gather(-1, indices))


def _magnitude_unit(bits: int) -> int:
    """Return ``s``, the code of the largest magnitude: ``2**(bits-1) - 1``, or 1 for one bit."""
    return max((1 << (bits - 1)) - 1, 1)


@dataclass(frozen=True)
class QuantizedUpdates:
    """Integer codes and per-client scales: what a quantising client puts on the wire.

    Attributes:
        codes: ``[C, P]`` int16 levels; in ``{-s, ..., s}`` with ``s = 2**(bits-1) - 1``
            for ``bits >= 2``, in ``{-1, +1}`` for ``bits = 1``.
        scales: ``[C]`` each client's ``M = max_j |u_j|``.
        bits: bits per coordinate.
    """

    codes: Tensor
    scales: Tensor
    bits: int

    def dequantize(self) -> Tensor:
        """Return ``codes * M / s`` ``[C, P]`` (``codes * M`` for one bit), what the server rebuilds."""
        unit = (self.scales / _magnitude_unit(self.bits)).unsqueeze(-1)
        return self.codes.to(self.scales.dtype) * unit

    @property
    def step(self) -> Tensor:
        """``[C]`` spacing of each client's grid: ``M / s``, or ``2 M`` for one bit (levels ``±M``)."""
        if self.bits == 1:
            return 2 * self.scales
        return self.scales / _magnitude_unit(self.bits)


def stochastic_quantize(updates: Tensor, bits: int, *, generator: torch.Generator) -> QuantizedUpdates:
    """Quantise each row of ``updates`` ``[C, P]`` stochastically and without bias.

    QSGD (Alistarh et al., "QSGD: Communication-Efficient SGD via Gradient Quantization
    and Encoding", NeurIPS 2017) with ``s = 2**(bits-1) - 1`` levels per sign, so a
    sign and a level fit in ``bits`` bits. With ``M = max_j |u_j|`` per client and
    ``x_j = s |u_j| / M``, the code is ``sign(u_j) * (floor(x_j) + b_j)`` with
    ``b_j ~ Bernoulli(x_j - floor(x_j))``; dequantised, ``E[code * M / s] = u_j``, and
    the error is below one step ``M / s``.

    One bit leaves QSGD no magnitude level (``s = 0``), so ``bits = 1`` sends a
    stochastic sign instead: ``+M`` with probability ``(1 + u_j / M) / 2``, else
    ``-M``. It is unbiased too, ``E = M (1 + u_j/M)/2 - M (1 - u_j/M)/2 = u_j``, and
    its error is at most the step ``2 M`` between its two levels. A zero row
    (``M = 0``) is sent as zeros.

    Args:
        updates: ``[C, P]`` one flat update per client.
        bits: bits per coordinate, 1 to 16.
        generator: the only randomness used (the rounding draws).

    >>> q = stochastic_quantize(torch.tensor([[0.5, -1.0, 0.0]]), bits=2,
    ...                         generator=torch.Generator().manual_seed(0))
    >>> q.scales, q.dequantize().abs().max().item()
    (tensor([1.]), 1.0)
    """
    scales = updates.abs().amax(dim=-1)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales)).unsqueeze(-1)
    draws = torch.rand(updates.shape, generator=generator, dtype=updates.dtype).to(updates.device)
    if bits == 1:
        codes = torch.where(draws < (1 + updates / safe) / 2, 1, -1)
        codes = torch.where(scales.unsqueeze(-1) > 0, codes, 0)
    else:
        scaled = updates.abs() / safe * _magnitude_unit(bits)
        lower = scaled.floor()
        levels = lower + (draws < scaled - lower).to(lower.dtype)
        codes = torch.sign(updates).to(levels.dtype) * levels
    return QuantizedUpdates(codes=codes.to(torch.int16), scales=scales, bits=bits)


@MECHANISMS.register("compression")
class Compression(ClientMechanism):
    """Every client sends a compressed update; the server sees only its decompression.

    See the module docstring for the two methods and their papers. The vector handed
    to the protocol is the dense decompressed ``[P]`` vector (zeros outside the top-k,
    or ``code * M / s``). Each client's own view keeps its true ``update`` next to what
    it ``sent`` (the composition records both).

    Metrics per round: ``compression_wire_bytes`` (one client's upload: ``k`` int32
    indices and ``k`` values for top-k, ``ceil(P * bits / 8)`` bytes of codes and one
    scale for quantisation), ``compression_ratio`` (dense bytes over wire bytes) and
    ``compression_relative_error`` (mean over clients of ``||sent - u|| / ||u||``, 0
    for a zero update).

    Args:
        method: ``"topk"`` or ``"quantize"``.
        keep: top-k only: fraction of coordinates kept, in ``(0, 1]`` (default 0.1).
        bits: quantisation only: bits per coordinate, 1 to 16 (default 8).

    Raises:
        ConfigError: an option is out of range, or belongs to the other method.

    >>> Compression(keep=0.25).public_parameters()
    {'compression_method': 'topk', 'compression_keep': 0.25}
    >>> Compression(method="topk", bits=4)
    Traceback (most recent call last):
    ...
    leakage.errors.ConfigError: bits applies only to method='quantize', got bits=4 with method='topk'
    """

    name = "compression"

    def __init__(
        self,
        *,
        method: CompressionMethod = "topk",
        keep: float | None = None,
        bits: int | None = None,
    ) -> None:
        method = require_choice("method", method, _METHODS)
        if method == "topk" and bits is not None:
            raise ConfigError(f"bits applies only to method='quantize', got bits={bits!r} with method='topk'")
        if method == "quantize" and keep is not None:
            raise ConfigError(f"keep applies only to method='topk', got keep={keep!r} with method='quantize'")
        self.method: CompressionMethod = method
        self.keep = _check_keep(_DEFAULT_KEEP if keep is None else keep)
        self.bits = _check_bits(_DEFAULT_BITS if bits is None else bits)

    def public_parameters(self) -> dict[str, PublicValue]:
        if self.method == "topk":
            return {"compression_method": "topk", "compression_keep": self.keep}
        return {"compression_method": "quantize", "compression_bits": self.bits}

    def apply(self, context: RoundContext, protocol: AggregationScheme) -> MechanismOutput:
        updates = context.updates
        num_parameters = updates.shape[-1]
        value_bytes = updates.element_size()
        if self.method == "topk":
            sent = topk_sparsify(updates, self.keep)
            wire_bytes = kept_coordinates(num_parameters, self.keep) * (_INDEX_BYTES + value_bytes)
        else:
            sent = stochastic_quantize(updates, self.bits, generator=context.generator).dequantize()
            wire_bytes = math.ceil(num_parameters * self.bits / 8) + value_bytes
        metrics = {
            "compression_wire_bytes": float(wire_bytes),
            "compression_ratio": num_parameters * value_bytes / wire_bytes,
            "compression_relative_error": _mean_relative_error(sent, updates),
        }
        return MechanismOutput(updates=sent, public=self.public_parameters(), metrics=metrics)


def _check_keep(keep: object) -> float:
    require_positive_float("keep", keep)  # zero, negatives and non-numbers: the message gives the lower bound alone
    return require_in_interval("keep", keep, 0, 1, inclusive="right", what="a fraction")


def _check_bits(bits: object) -> int:
    require_int("bits", bits, minimum=1)  # below 1 the message gives the lower bound alone
    return require_int("bits", bits, minimum=1, maximum=_MAX_BITS)


def _mean_relative_error(sent: Tensor, updates: Tensor) -> float:
    """Mean over rows of ``||sent - u|| / ||u||``; a zero row (sent as zeros) counts 0."""
    if updates.shape[0] == 0:
        return 0.0
    norms = torch.linalg.vector_norm(updates, dim=-1)
    errors = torch.linalg.vector_norm(sent - updates, dim=-1)
    ratios = torch.where(norms > 0, errors / torch.where(norms > 0, norms, 1), 0)
    return float(ratios.mean())
