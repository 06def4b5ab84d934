"""Local client training as pure functions of the model parameters.

Three paths compute the same thing: ``train_clients_vectorised`` runs many clients at
once with ``torch.func.vmap`` (clients whose batches have equal shapes),
``train_clients_masked`` does the same for clients holding different numbers of
samples (batches padded to one shape, the padding weighted 0 in the loss), and
``train_client`` runs one client. All return the *update* ``delta = theta_local -
theta_global`` as a flat vector, accumulated step by step as ``delta <- delta - lr *
grad`` so that a single step gives exactly ``-lr * grad``.

A model with buffers (batch normalisation's running statistics) trains in training
mode as a client does: each step normalises with its batch's statistics and moves the
running statistics. Give ``buffers`` (per client, stacked ``[C, ...]``, or one client's
for ``train_client``): they are updated in place, so after training they hold each
client's buffers as it would send them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, MutableMapping, Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, grad_and_value, vmap

from leakage.models import ParameterLayout

__all__ = [
    "LOSSES",
    "LossFunction",
    "LossName",
    "WeightedLossFunction",
    "make_loss",
    "make_weighted_loss",
    "mixes_samples",
    "train_client",
    "train_clients_masked",
    "train_clients_vectorised",
]

# loss(named parameters, inputs [B, ...], targets [B]) -> mean loss
LossFunction = Callable[[dict[str, Tensor], Tensor, Tensor], Tensor]
# loss(named parameters, inputs [B, ...], targets [B], sample_weights [B]) -> weighted sum of per-sample losses
WeightedLossFunction = Callable[[dict[str, Tensor], Tensor, Tensor, Tensor], Tensor]
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


def make_weighted_loss(model: nn.Module, name: LossName = "cross_entropy") -> WeightedLossFunction:
    """Return ``loss(params, inputs [B, ...], targets [B], sample_weights [B]) -> sum_i w_i l_i``.

    With weights ``1 / B`` this is :func:`make_loss`'s mean loss up to float rounding;
    a weight of 0 takes a (padding) sample out of the loss and its gradient. The
    per-sample losses ``l_i`` are those of :func:`make_loss`.

    >>> from leakage.models import create_model
    >>> net = create_model("logreg", input_shape=(3,), num_classes=2, generator=torch.Generator())
    >>> params = dict(net.named_parameters())
    >>> inputs, targets = torch.ones(3, 3), torch.tensor([0, 1, 1])
    >>> padded = make_weighted_loss(net)(params, inputs, targets, torch.tensor([0.5, 0.5, 0.0]))
    >>> bool(torch.isclose(padded, make_loss(net)(params, inputs[:2], targets[:2])))
    True
    """
    if name == "taylor_logistic":

        def taylor(params: dict[str, Tensor], inputs: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
            outputs = functional_call(model, params, (inputs,))
            logit = outputs[..., 1] - outputs[..., 0]
            signs = 2.0 * targets.to(logit.dtype) - 1.0
            total: Tensor = ((_LOG_2 - signs * logit / 2.0 + logit * logit / 8.0) * weights).sum()
            return total

        return taylor

    def loss(params: dict[str, Tensor], inputs: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
        losses = F.cross_entropy(functional_call(model, params, (inputs,)), targets, reduction="none")
        total: Tensor = (losses * weights).sum()
        return total

    return loss


def mixes_samples(model: nn.Module) -> bool:
    """Return whether ``model``'s output for one sample depends on the others in its batch (batch normalisation).

    Padding a batch with masked samples is exact only when it does not.

    >>> mixes_samples(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)))
    True
    """
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


def train_client(
    loss: LossFunction,
    layout: ParameterLayout,
    params: Tensor,
    batches: Sequence[tuple[Tensor, Tensor]],
    *,
    lr: float,
    buffers: dict[str, Tensor] | None = None,
    frozen: frozenset[str] = frozenset(),
) -> tuple[Tensor, Tensor]:
    """Run SGD on one client's ``batches`` starting from the flat ``params`` ``[P]``.

    ``buffers`` (the client's copy of the model's buffers) are updated in place; the
    parameters named in ``frozen`` (``requires_grad=False`` in the user's model) never move.

    Returns:
        ``(update [P], first_loss [])``: the local model minus ``params``, and the loss
        on the first batch before any step.
    """
    delta = torch.zeros_like(params)
    first_loss = torch.tensor(float("nan"), device=params.device)
    for index, (inputs, targets) in enumerate(batches):
        local = (params + delta if index else params).detach().requires_grad_(True)
        named = layout.unflatten(local)
        value = loss({**named, **buffers} if buffers else named, inputs, targets)
        (gradient,) = torch.autograd.grad(value, local)
        for name in frozen:
            layout.unflatten(gradient)[name].zero_()  # a view into the flat gradient
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
    workspace: MutableMapping[str, Tensor] | None = None,
    buffers: dict[str, Tensor] | None = None,
    frozen: frozenset[str] = frozenset(),
) -> tuple[Tensor, Tensor]:
    """Run SGD on ``C`` clients at once; step ``s`` uses ``batches[s]``.

    Each client's update agrees with :func:`train_client` on its own batches to float
    rounding: the batched kernels may sum in another order.

    Args:
        loss: from :func:`make_loss`.
        layout: the parameter layout of the flat vectors.
        params: shared starting point ``[P]``.
        batches: per local step, ``(inputs [C, B_s, ...], targets [C, B_s])``.
        lr: client learning rate.
        out: optional ``[C, P]`` tensor (a view is fine) that receives the updates.
        workspace: optional buffers kept between calls for the local parameters of
            later steps (filled on first use), so repeated calls allocate less.
        buffers: the model's buffers per client, ``[C, ...]`` each, updated in place.
        frozen: names of parameters that never move (``requires_grad=False``).

    Returns:
        ``(updates [C, P], first_losses [C])``; ``updates`` is ``out`` when given.
    """
    return _vectorised_sgd(
        loss, layout, params, batches, lr=lr, out=out, workspace=workspace, buffers=buffers, frozen=frozen
    )


def train_clients_masked(
    loss: WeightedLossFunction,
    layout: ParameterLayout,
    params: Tensor,
    batches: Sequence[tuple[Tensor, Tensor, Tensor]],
    *,
    lr: float,
    out: Tensor | None = None,
    workspace: MutableMapping[str, Tensor] | None = None,
    frozen: frozenset[str] = frozenset(),
) -> tuple[Tensor, Tensor]:
    """Run SGD on ``C`` clients whose batches were padded to one shape; padding weighs 0.

    Clients holding different numbers of samples train in one ``vmap`` call: every
    step's batch is padded to the largest client's, and ``sample_weights`` give each
    real sample ``1 / (real samples of the step)`` and each padded one 0, so each
    client's step is the gradient of the mean loss over its own samples. Only for
    models whose per-sample outputs do not depend on the rest of the batch (no batch
    normalisation). Agrees with :func:`train_client` on the unpadded batches to float
    rounding.

    Args:
        loss: from :func:`make_weighted_loss`.
        layout: the parameter layout of the flat vectors.
        params: shared starting point ``[P]``.
        batches: per local step, ``(inputs [C, B_s, ...], targets [C, B_s],
            sample_weights [C, B_s])``; every client has a sample of weight > 0 in the first step.
        lr: client learning rate.
        out: optional ``[C, P]`` tensor (a view is fine) that receives the updates.
        workspace: optional buffers kept between calls for the local parameters of
            later steps (filled on first use), so repeated calls allocate less.
        frozen: names of parameters that never move (``requires_grad=False``).

    Returns:
        ``(updates [C, P], first_losses [C])``; ``updates`` is ``out`` when given.
    """
    return _vectorised_sgd(loss, layout, params, batches, lr=lr, out=out, workspace=workspace, frozen=frozen)


def _vectorised_sgd(
    loss: Callable[..., Tensor],
    layout: ParameterLayout,
    params: Tensor,
    batches: Sequence[tuple[Tensor, ...]],
    *,
    lr: float,
    out: Tensor | None,
    workspace: MutableMapping[str, Tensor] | None,
    buffers: dict[str, Tensor] | None = None,
    frozen: frozenset[str] = frozenset(),
) -> tuple[Tensor, Tensor]:
    """SGD over stacked per-client parameters: ``loss(params, *batches[s])`` per client and step."""
    clients = batches[0][0].shape[0]
    arguments = len(batches[0])
    if buffers:  # per-client buffers ride along as a batched argument the steps update in place
        return _vectorised_sgd_with_buffers(
            loss, layout, params, batches, lr=lr, out=out, buffers=buffers, frozen=frozen
        )
    start = layout.unflatten(params)
    if out is None:
        out = torch.empty(clients, layout.num_parameters, dtype=params.dtype, device=params.device)
    # The updates accumulate in place in ``out``: each parameter's block of columns,
    # viewed with the parameter's shape, is that parameter's running delta. Gradients
    # stay per parameter: concatenating them into one [C, P] block would cost a copy.
    delta = {
        name: column.view(clients, *shape)
        for (name, column), shape in zip(_column_views(out, layout).items(), layout.shapes, strict=True)
    }
    # Every client starts from the same global model, so the first step broadcasts
    # the parameters instead of copying them C times.
    first_step = vmap(grad_and_value(loss), in_dims=(None,) + (0,) * arguments)
    gradients, first_losses = first_step(start, *batches[0])
    for name, gradient in gradients.items():
        if name in frozen:
            delta[name].zero_()
        else:
            torch.mul(gradient.detach(), -lr, out=delta[name])
    if len(batches) > 1:
        # Later steps run from per-client parameters ``start + delta``, written into
        # buffers that every step (and, given a workspace, every call) reuses: fresh
        # [C, P] memory costs a page fault per 4 KiB on first touch.
        local = _local_buffers(start, clients, params.dtype, workspace)
        later_step = vmap(grad(loss), in_dims=(0,) * (arguments + 1))
        for arrays in batches[1:]:
            for name, buffer in local.items():
                torch.add(start[name], delta[name], out=buffer)
            for name, gradient in later_step(local, *arrays).items():
                if name not in frozen:
                    delta[name].add_(gradient.detach(), alpha=-lr)
    return out, first_losses.detach()


def _vectorised_sgd_with_buffers(
    loss: Callable[..., Tensor],
    layout: ParameterLayout,
    params: Tensor,
    batches: Sequence[tuple[Tensor, ...]],
    *,
    lr: float,
    out: Tensor | None,
    buffers: dict[str, Tensor],
    frozen: frozenset[str] = frozenset(),
) -> tuple[Tensor, Tensor]:
    """:func:`_vectorised_sgd` for a model with buffers: each client's ``[C, ...]`` buffers move in place."""
    clients = batches[0][0].shape[0]
    arguments = len(batches[0])
    if out is None:
        out = torch.empty(clients, layout.num_parameters, dtype=params.dtype, device=params.device)

    def with_buffers(named: dict[str, Tensor], state: dict[str, Tensor], *batch: Tensor) -> Tensor:
        return loss({**named, **state}, *batch)

    start = layout.unflatten(params)
    first_step = vmap(grad_and_value(with_buffers), in_dims=(None, 0) + (0,) * arguments)
    gradients, first_losses = first_step(start, buffers, *batches[0])
    torch.mul(_flat(gradients, layout, frozen).detach(), -lr, out=out)
    if len(batches) > 1:
        later_step = vmap(grad(with_buffers), in_dims=(0, 0) + (0,) * arguments)
        for arrays in batches[1:]:
            local = layout.unflatten(params.unsqueeze(0) + out)
            out.add_(_flat(later_step(local, buffers, *arrays), layout, frozen).detach(), alpha=-lr)
    return out, first_losses.detach()


def _flat(named: dict[str, Tensor], layout: ParameterLayout, frozen: frozenset[str] = frozenset()) -> Tensor:
    """``[C, P]`` from per-parameter ``[C, *shape]`` tensors, in layout order (``frozen`` ones as zeros)."""
    pieces = [named[name].reshape(named[name].shape[0], -1) for name in layout.names]
    return torch.cat([p.mul(0) if n in frozen else p for n, p in zip(layout.names, pieces, strict=True)], dim=1)


def _local_buffers(
    start: dict[str, Tensor], clients: int, dtype: torch.dtype, workspace: MutableMapping[str, Tensor] | None
) -> dict[str, Tensor]:
    """One ``[clients, *shape]`` buffer per parameter, the first rows of ``workspace``'s when they are large enough."""
    buffers = {}
    for name, value in start.items():
        kept = None if workspace is None else workspace.get(name)
        if kept is None or kept.shape[0] < clients or kept.dtype != dtype or kept.device != value.device:
            kept = torch.empty(clients, *value.shape, dtype=dtype, device=value.device)
            if workspace is not None:
                workspace[name] = kept
        buffers[name] = kept[:clients]
    return buffers


def _column_views(flat: Tensor, layout: ParameterLayout) -> dict[str, Tensor]:
    """Views ``[C, size]`` of ``flat`` ``[C, P]`` holding each parameter's entries."""
    return dict(zip(layout.names, torch.split(flat, list(layout.sizes), dim=-1), strict=True))
