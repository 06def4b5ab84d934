"""The attacker's copy of a model with batch normalisation: the function a client's training step computed.

A client computes its gradient in training mode, where batch normalisation normalises
with the statistics of the batch it trains on; the running buffers only serve
evaluation and never enter that gradient. Gradient-matching attacks therefore evaluate
candidate batches through :func:`use_batch_statistics`, which also keeps the attacker's
forward from moving buffers in place (which ``vmap`` over restarts refuses).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BatchStatisticsNorm", "use_batch_statistics"]


def use_batch_statistics(model: nn.Module) -> nn.Module:
    """Swap every batch-norm layer of the attacker's copy for :class:`BatchStatisticsNorm`.

    A client computes its gradient or update in training steps, where batch normalisation
    uses the mean and variance of the batch it trains on; running averages only serve
    evaluation. The swapped layer always normalises with the current batch, in either
    module mode, so the attacker's forward over a candidate batch is the function the
    client computed, and it keeps no buffer that a forward would update in place (which
    ``vmap`` over restarts refuses). Under ``vmap`` each restart's candidate batch gets its
    own statistics, as each stands for the client's one batch. The parameters stay the
    same objects under the same names, so the observation's flat vector still loads.
    """
    for name, module in list(model.named_modules()):
        if name and isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, BatchStatisticsNorm(module))
    return model


class BatchStatisticsNorm(nn.Module):
    """Batch normalisation with the current batch's statistics, written in plain tensor operations.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the mean and biased variance
    of each channel over the batch and spatial axes, as ``torch.nn.BatchNorm2d`` computes
    in training. Plain operations rather than ``F.batch_norm`` because the input gradient
    of the batched restarts goes through the derivative of the parameter gradient, and in
    that double backward the native kernel under ``vmap`` returned input gradients that
    disagreed with the one-at-a-time loop and with finite differences (torch 2.14, float64,
    relative error about 1e-4), while these operations agree to rounding.
    """

    def __init__(self, norm: nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias

    def forward(self, inputs: Tensor) -> Tensor:
        axes = [0, *range(2, inputs.dim())]
        mean = inputs.mean(axes, keepdim=True)
        variance = inputs.var(axes, keepdim=True, correction=0)
        normalised = (inputs - mean) * torch.rsqrt(variance + self.eps)
        per_channel = (1, -1) + (1,) * (inputs.dim() - 2)
        if self.weight is not None:
            normalised = normalised * self.weight.reshape(per_channel)
        if self.bias is not None:
            normalised = normalised + self.bias.reshape(per_channel)
        return normalised
