"""``trap_weights``: a malicious server's first layer that lets few samples through each unit.

Boenisch, Dziedzic, Schuster, Shamsabadi, Shumailov and Papernot, "When the Curious
Abandon Honesty: Federated Learning Is Not Private", IEEE EuroS&P 2023.

Threat model: an *active* server that chooses the weights of a fully connected first
layer followed by ReLU (nothing is added to the architecture). For a ReLU unit ``i``
with weight row ``w_i`` and bias ``b_i``, the gradient of the loss over a batch is::

    dL/dw_i = sum_{s: w_i . x_s + b_i > 0} g_(s,i) x_s      dL/db_i = sum_{s: ...} g_(s,i)

so ``dL/dw_i / dL/db_i = x_s`` exactly when one sample ``s`` of the whole round
activates unit ``i`` (a mixture of the active samples otherwise). The same holds for
a FedSGD update and for the aggregate of updates (a common factor ``-lr`` times the
weights cancels), so secure aggregation does not stop it; under FedAvg it is
approximate. The server makes activations rare with *trap weights*: each row's
magnitudes are drawn uniformly from ``[0, 1)``, a random half of the entries is made
negative, and the positive half is multiplied by ``scale < 1`` (the same as making the
negative half ``1 / scale`` larger), so that ``w_i . x`` is slightly negative for most
non-negative inputs and each unit fires for few of them. Weights act on raw inputs in
``[0, 1]``: the bias folds the input normalisation in (``b_i = w_i . mean / std`` with
the row applied as ``w_i / std``). The candidates are ``dW_i / db_i`` of every row with
a non-negligible bias gradient; like the imprint attack, they belong to no client.

Fewer units per sample than bins in :mod:`attacks.imprint`: each unit is a random
half-space, so the chance that exactly one sample of a round falls into it drops fast
with the number of samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from attacks.base import ATTACKS, AttackProduct
from attacks.imprint import DEFAULT_MIN_RELATIVE_BIAS, _FirstLayerAttack, _ratios
from leakage.checks import require_in_interval, require_int, require_positive_float
from leakage.errors import ConfigError

__all__ = ["TrapWeightsAttack", "install_trap_weights", "recover_from_trap_weights", "trap_weights"]

DEFAULT_SCALE = 0.95


def trap_weights(
    out_features: int,
    in_features: int,
    *,
    scale: float = DEFAULT_SCALE,
    generator: torch.Generator,
) -> Tensor:
    """Return ``[out, in]`` float64 trap weights for raw (non-negative) inputs.

    Each row: magnitudes ``U[0, 1)``, a random half of the entries (``in // 2``) made
    negative, the others multiplied by ``scale``.

    Raises:
        ConfigError: a size < 1 (``in_features`` < 2) or ``scale`` outside ``(0, 1]``.

    >>> rows = trap_weights(3, 4, generator=torch.Generator().manual_seed(0))
    >>> rows.shape, (rows < 0).sum(dim=1).tolist()
    (torch.Size([3, 4]), [2, 2, 2])
    """
    out_features = require_int("out_features", out_features, minimum=1)
    in_features = require_int("in_features", in_features, minimum=2)
    scale = require_in_interval("scale", scale, 0, 1, inclusive="right")
    magnitudes = torch.rand(out_features, in_features, generator=generator, dtype=torch.float64)
    order = torch.argsort(torch.rand(out_features, in_features, generator=generator), dim=1)
    is_negative = torch.zeros(out_features, in_features, dtype=torch.bool)
    is_negative.scatter_(1, order[:, : in_features // 2], True)
    return torch.where(is_negative, -magnitudes, scale * magnitudes)


def install_trap_weights(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    scale: float = DEFAULT_SCALE,
    gain: float = 1e-3,
    mean: Tensor | None = None,
    std: Tensor | None = None,
    generator: torch.Generator,
) -> nn.Module:
    """Set ``model``'s first ``nn.Linear`` to trap weights in place and return ``model``.

    The row ``i`` acts on the raw input ``r = x * std + mean`` as ``gain * t_i . r``
    (``t`` from :func:`trap_weights`): weight ``gain * t_i / std`` on the normalised input
    ``x`` and bias ``gain * t_i . (mean / std)``, with ``mean`` and ``std`` broadcast to
    ``input_shape`` and flattened (``None``: raw inputs, mean 0 and std 1). The next ``nn.Linear``
    is multiplied by ``1 / gain`` so the model computes the same function as with
    ``gain = 1`` (ReLU is positively homogeneous); a small gain keeps one sample's
    share of the first layer's update above the float32 spacing of its weights, which
    the observers' model difference needs.

    Raises:
        ConfigError: no ``nn.Linear`` with bias taking ``prod(input_shape)`` features, a
            bad ``scale`` or ``gain``, or ``mean``/``std`` that do not broadcast to ``input_shape``.

    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> _ = install_trap_weights(net, (1, 2, 2), gain=0.5, generator=torch.Generator().manual_seed(0))
    >>> (net[1].weight < 0).sum(dim=1).tolist(), net[1].weight.abs().max().item() <= 0.5
    ([2, 2, 2], True)
    """
    gain = require_positive_float("gain", gain)
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears or linears[0].bias is None:
        raise ConfigError("model must have a first nn.Linear with a bias to hold trap weights")
    first = linears[0]
    shape = tuple(int(size) for size in input_shape)
    if first.in_features != math.prod(shape):
        raise ConfigError(f"input_shape {shape} has {math.prod(shape)} features but the first nn.Linear takes "
                          f"{first.in_features}")
    traps = trap_weights(first.out_features, first.in_features, scale=scale, generator=generator)
    try:
        mean_flat = torch.broadcast_to(torch.zeros(()) if mean is None else mean.detach(), shape).reshape(-1)
        std_flat = torch.broadcast_to(torch.ones(()) if std is None else std.detach(), shape).reshape(-1)
    except RuntimeError as error:
        raise ConfigError(f"mean and std must broadcast to input_shape {shape}: {error}") from None
    mean_flat, std_flat = mean_flat.to(torch.float64), std_flat.to(torch.float64)
    with torch.no_grad():
        first.weight.copy_(gain * traps / std_flat)
        first.bias.copy_(gain * traps @ (mean_flat / std_flat))
        if len(linears) > 1:
            linears[1].weight.mul_(1.0 / gain)
    return model


def recover_from_trap_weights(
    weight_grad: Tensor, bias_grad: Tensor, *, min_relative_bias: float = DEFAULT_MIN_RELATIVE_BIAS
) -> tuple[Tensor, Tensor]:
    """Return ``(candidates [M, D], rows [M])``: ``dW_i / db_i`` of every row whose ``|db_i|`` is non-negligible.

    A row that one sample alone activated gives that sample exactly; the others give
    mixtures (which simply fail to match any sample). Works on a gradient, a FedSGD
    update or an aggregate of them. Computed in float64.

    Args:
        weight_grad: ``[H, D]`` gradient (or update) of the first layer's weight.
        bias_grad: ``[H]`` gradient (or update) of its bias, same scale.
        min_relative_bias: rows with ``|db_i|`` below this share of the largest are
            treated as inactive, in ``[0, 1)``.

    Raises:
        ConfigError: shapes disagree, or ``min_relative_bias`` outside ``[0, 1)``.

    >>> candidates, rows = recover_from_trap_weights(torch.tensor([[2.0, 4.0], [0.0, 0.0]]), torch.tensor([2.0, 0.0]))
    >>> candidates.tolist(), rows.tolist()
    ([[1.0, 2.0]], [0])
    """
    threshold = require_in_interval("min_relative_bias", min_relative_bias, 0, 1, inclusive="left")
    if weight_grad.dim() != 2 or bias_grad.shape != weight_grad.shape[:1]:
        raise ConfigError(f"weight_grad must be [H, D] and bias_grad [H], got {tuple(weight_grad.shape)} "
                          f"and {tuple(bias_grad.shape)}")
    return _ratios(weight_grad.detach().to(torch.float64), bias_grad.detach().to(torch.float64), threshold)


@ATTACKS.register("trap_weights")
class TrapWeightsAttack(_FirstLayerAttack):
    """Read samples out of each round's aggregated update through a first layer of trap weights.

    Runs as the server (or an eavesdropper) wherever it sees the model change of a
    round; ``knowledge.model`` is the model the server sent, whose first ``nn.Linear``
    holds the trap weights (:func:`install_trap_weights`). Estimates are attributed to
    no client.

    Args:
        min_relative_bias: rows whose bias change is below this share of the largest
            are treated as inactive.

    Raises:
        ConfigError: ``min_relative_bias`` outside ``[0, 1)``.
    """

    name = "trap_weights"
    observer = "a malicious server that sent every client a first layer of trap weights, reading the model change"
    role = "server"
    produces: ClassVar[AttackProduct] = "records"
    _module: ClassVar[type[nn.Module]] = nn.Linear

    def _recover(self, weight_change: Tensor, bias_change: Tensor) -> tuple[Tensor, Tensor]:
        return recover_from_trap_weights(weight_change, bias_change, min_relative_bias=self.min_relative_bias)
