"""Per-client L2 clipping and unbiased randomised rounding onto a grid: the maths DP schemes share."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["clip_updates", "stochastic_round"]


def clip_updates(updates: Tensor, clip_norm: float) -> tuple[Tensor, Tensor]:
    """Return each row scaled to L2 norm at most ``clip_norm``, and which rows were scaled down.

    ``clip(u, C) = u * min(1, C / ||u||_2)`` (Abadi et al. 2016; applied per client in
    DP-FedAvg, McMahan et al. 2018). A zero row stays zero.

    Args:
        updates: ``[C, P]`` client updates.
        clip_norm: the bound ``C`` > 0.

    Returns:
        ``(clipped [C, P]`` in the dtype of ``updates``, ``was_clipped [C]`` bool).

    >>> clipped, was_clipped = clip_updates(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), 1.0)
    >>> clipped
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
    >>> was_clipped
    tensor([ True, False])
    """
    norms = torch.linalg.vector_norm(updates, dim=-1, keepdim=True, dtype=torch.float64)
    scale = (clip_norm / norms).clamp(max=1.0)  # a zero norm gives inf, clamped to 1
    return updates * scale.to(updates.dtype), norms.squeeze(-1) > clip_norm


def stochastic_round(values: Tensor, step: float, *, generator: torch.Generator) -> Tensor:
    """Return integer grid indices ``k`` with ``E[k * step] = values``, rounding up or down at random.

    ``x / step`` is rounded up with probability equal to its fractional part, so each
    coordinate moves by less than one ``step`` and the rounding is unbiased (the
    randomised rounding of Kairouz, Liu, Steinke 2021, without their conditioning on
    the norm).

    Args:
        values: any shape, real.
        step: grid spacing ``Δ`` > 0.
        generator: source of the rounding coins.

    Returns:
        int64 tensor of the shape of ``values``; ``indices * step`` lies on ``Δ·Z``.

    >>> stochastic_round(torch.tensor([1.0, -2.0, 0.5]), 0.5, generator=torch.Generator().manual_seed(0))
    tensor([ 2, -4,  1])
    """
    scaled = values.to(torch.float64) / step
    lower = torch.floor(scaled)
    coins = torch.rand(scaled.shape, generator=generator, dtype=torch.float64)
    return (lower + (coins < scaled - lower).to(torch.float64)).to(torch.int64)
