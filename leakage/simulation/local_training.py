"""Local client training as pure functions of the model parameters.

Two paths compute the same thing: ``train_clients_vectorised`` runs many clients at
once with ``torch.func.vmap`` (clients whose batches have equal shapes), and
``train_client`` runs one client. Both return the *update* ``delta = theta_local -
theta_global`` as a flat vector, accumulated step by step as ``delta <- delta - lr *
grad`` so that a single step gives exactly ``-lr * grad``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from leakage.models import ParameterLayout

__all__ = ["LOSSES", "LossFunction", "LossName", "make_loss", "train_client", "train_clients_vectorised"]

# loss(named parameters, inputs [B, ...], targets [B]) -> mean loss
LossFunction = Callable[[dict[str, Tensor], Tensor, Tensor], Tensor]
LossName = Literal["cross_entropy", "taylor_logistic"]
LOSSES: tuple[str, ...] = get_args(LossName)
_LOG_2 = math.log(2.0)


def make_loss(model: nn.Module, name: LossName = "cross_entropy") -> LossFunction:
    """Return ``loss(params, inputs [B, ...], targets [B]) -> mean loss`` of ``model``.

    ``params`` maps parameter names to tensors; the model object only supplies the
    architecture and its own parameters are never used.

    Args:
        model: the architecture.
        name: ``"cross_entropy"``, or ``"taylor_logistic"``: the second-order Taylor
            expansion of the logistic loss at 0 used for training under homomorphic
            encryption (Aono, Hayashi, Trieu Phong, Wang, "Scalable and Secure Logistic
            Regression via Homomorphic Encryption", CODASPY 2016),
            ``log 2 - y z / 2 + z^2 / 8`` with ``y = 2 t - 1`` in ``{-1, +1}`` and the
            logit ``z = out_1 - out_0`` of a two-output model. Its gradient is linear in
            the batch's sufficient statistics ``sum x x^T`` and ``sum y x``.

    >>> from leakage.models import create_model
    >>> net = create_model("logreg", input_shape=(3,), num_classes=2, generator=torch.Generator())
    >>> loss = make_loss(net, "taylor_logistic")
    >>> zero = {name: torch.zeros_like(p) for name, p in net.named_parameters()}
    >>> round(float(loss(zero, torch.ones(2, 3), torch.tensor([0, 1]))), 4)  # log 2 at z = 0
    0.6931
    """
    if name == "taylor_logistic":

        def taylor(params: dict[str, Tensor], inputs: Tensor, targets: Tensor) -> Tensor:
            outputs = functional_call(model, params, (inputs,))
            logit = outputs[..., 1] - outputs[..., 0]
            signs = 2.0 * targets.to(logit.dtype) - 1.0
            value: Tensor = (_LOG_2 - signs * logit / 2.0 + logit * logit / 8.0).mean()
            return value

        return taylor

    def loss(params: dict[str, Tensor], inputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(model, params, (inputs,)), targets)

    return loss


def train_client(
    loss: LossFunction,
    layout: ParameterLayout,
    params: Tensor,
    batches: Sequence[tuple[Tensor, Tensor]],
    *,
    lr: float,
) -> tuple[Tensor, Tensor]:
    """Run SGD on one client's ``batches`` starting from the flat ``params`` ``[P]``.

    Returns:
        ``(update [P], first_loss [])``: the local model minus ``params``, and the loss
        on the first batch before any step.
    """
    delta = torch.zeros_like(params)
    first_loss = torch.tensor(float("nan"))
    for index, (inputs, targets) in enumerate(batches):
        local = (params + delta if index else params).detach().requires_grad_(True)
        value = loss(layout.unflatten(local), inputs, targets)
        (gradient,) = torch.autograd.grad(value, local)
        delta.add_(gradient, alpha=-lr)
        if index == 0:
            first_loss = value.detach()
    return delta, first_loss


def train_clients_vectorised(
    loss: LossFunction,
    layout: ParameterLayout,
    params: Tensor,
    batches: Sequence[tuple[Tensor, Tensor]],
    *,
    lr: float,
    out: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run SGD on ``C`` clients at once; step ``s`` uses ``batches[s]``.

    Args:
        loss: from :func:`make_loss`.
        layout: the parameter layout of the flat vectors.
        params: shared starting point ``[P]``.
        batches: per local step, ``(inputs [C, B_s, ...], targets [C, B_s])``.
        lr: client learning rate.
        out: optional ``[C, P]`` tensor (a view is fine) that receives the updates.

    Returns:
        ``(updates [C, P], first_losses [C])``; ``updates`` is ``out`` when given.
    """
    clients = batches[0][1].shape[0]
    start = layout.unflatten(params)
    # Every client starts from the same global model, so the first step broadcasts
    # the parameters instead of copying them C times. Gradients stay per parameter:
    # concatenating them into one [C, P] block would cost a full extra copy.
    first_step = vmap(grad_and_value(loss), in_dims=(None, 0, 0))
    inputs, targets = batches[0]
    gradients, first_losses = first_step(start, inputs, targets)
    if out is None:
        out = torch.empty(clients, layout.num_parameters, dtype=params.dtype)
    # The updates accumulate in place in ``out``: each parameter's block of columns,
    # viewed with the parameter's shape, is that parameter's running delta.
    delta = {
        name: column.view(clients, *shape)
        for (name, column), shape in zip(_column_views(out, layout).items(), layout.shapes, strict=True)
    }
    for name, gradient in gradients.items():
        torch.mul(gradient.detach(), -lr, out=delta[name])
    if len(batches) > 1:
        later_step = vmap(grad_and_value(loss), in_dims=(0, 0, 0))
        for inputs, targets in batches[1:]:
            local = {name: start[name] + delta[name] for name in delta}
            gradients, _ = later_step(local, inputs, targets)
            for name, gradient in gradients.items():
                delta[name].add_(gradient.detach(), alpha=-lr)
    return out, first_losses.detach()


def _column_views(flat: Tensor, layout: ParameterLayout) -> dict[str, Tensor]:
    """Views ``[C, size]`` of ``flat`` ``[C, P]`` holding each parameter's entries."""
    return dict(zip(layout.names, torch.split(flat, list(layout.sizes), dim=-1), strict=True))
