"""Local client training as pure functions of a flat parameter vector.

Two paths compute the same thing: ``train_clients_vectorised`` runs many clients at
once with ``torch.func.vmap`` (clients whose batches have equal shapes), and
``train_client`` runs one client. Both return the *update* ``delta = theta_local -
theta_global``, accumulated step by step as ``delta <- delta - lr * grad`` so that a
single step gives exactly ``-lr * grad``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from leakage.models import ParameterLayout

__all__ = ["LossFunction", "make_loss", "train_client", "train_clients_vectorised"]

LossFunction = Callable[[Tensor, Tensor, Tensor], Tensor]


def make_loss(model: nn.Module, layout: ParameterLayout) -> LossFunction:
    """Return ``loss(flat_params [P], inputs [B, ...], targets [B]) -> mean cross-entropy``.

    The model object only supplies the architecture; its own parameters are never used.
    """

    def loss(flat_params: Tensor, inputs: Tensor, targets: Tensor) -> Tensor:
        logits = functional_call(model, layout.unflatten(flat_params), (inputs,))
        return F.cross_entropy(logits, targets)

    return loss


def train_client(
    loss: LossFunction,
    params: Tensor,
    batches: Sequence[tuple[Tensor, Tensor]],
    *,
    lr: float,
) -> tuple[Tensor, Tensor]:
    """Run SGD on one client's ``batches`` starting from ``params`` ``[P]``.

    Returns:
        ``(update [P], first_loss [])``: the local model minus ``params``, and the loss
        on the first batch before any step.
    """
    step = grad_and_value(loss)
    delta = torch.zeros_like(params)
    first_loss = torch.tensor(float("nan"))
    for index, (inputs, targets) in enumerate(batches):
        gradient, value = step(params + delta if index else params, inputs, targets)
        delta = delta - lr * gradient
        if index == 0:
            first_loss = value.detach()
    return delta.detach(), first_loss


def train_clients_vectorised(
    loss: LossFunction,
    params: Tensor,
    batches: Sequence[tuple[Tensor, Tensor]],
    *,
    lr: float,
) -> tuple[Tensor, Tensor]:
    """Run SGD on ``C`` clients at once; step ``s`` uses ``batches[s]``.

    Args:
        loss: from :func:`make_loss`.
        params: shared starting point ``[P]``.
        batches: per local step, ``(inputs [C, B_s, ...], targets [C, B_s])``.
        lr: client learning rate.

    Returns:
        ``(updates [C, P], first_losses [C])``.
    """
    # Every client starts from the same global model, so the first step broadcasts
    # the parameters instead of copying them C times.
    first_step = vmap(grad_and_value(loss), in_dims=(None, 0, 0))
    later_step = vmap(grad_and_value(loss), in_dims=(0, 0, 0))
    inputs, targets = batches[0]
    gradients, first_losses = first_step(params, inputs, targets)
    delta = -lr * gradients
    for inputs, targets in batches[1:]:
        gradients, _ = later_step(params + delta, inputs, targets)
        delta = delta - lr * gradients
    return delta.detach(), first_losses.detach()
