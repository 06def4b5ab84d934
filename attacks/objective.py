"""The attacker's differentiable copy of a client: what upload would these inputs produce?

Gradient inversion attacks search for inputs whose predicted upload matches the
observed one. For FedSGD the upload is the gradient of the mean cross-entropy on the
``B`` samples; for FedAvg the attacker unrolls the client's local SGD steps (known
learning rate, epochs and batch size) and predicts the *update*, as Geiping et al.
(NeurIPS 2020, section 5) do for multi-step updates. Everything is written with
``torch.func`` so the same function runs for one candidate or, under ``vmap``, for many
restarts at once, and regular autograd can still differentiate through it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad

from attacks.base import Knowledge, Observation
from leakage.errors import ConfigError
from leakage.simulation import batch_schedule

__all__ = [
    "UploadFunction",
    "cosine_distance",
    "l2_distance",
    "make_single_upload_function",
    "make_upload_function",
    "observed_target",
    "total_variation",
]

Params = dict[str, Tensor]
# upload(params, inputs [B, ...], targets [B] class indices or [B, K] probabilities) -> flat [P]
UploadFunction = Callable[[Params, Tensor, Tensor], Tensor]


def _loss(model: nn.Module) -> Callable[[Params, Tensor, Tensor], Tensor]:
    def loss(params: Params, inputs: Tensor, targets: Tensor) -> Tensor:
        logits = functional_call(model, params, (inputs,))
        if targets.is_floating_point():  # soft labels (DLG optimises them)
            return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()
        return F.cross_entropy(logits, targets)

    return loss


def make_upload_function(knowledge: Knowledge) -> UploadFunction:
    """Return ``upload(params, inputs, targets)``: the flat gradient or update a client would send.

    FedSGD: ``grad_theta mean CE(f_theta(x), y)``. FedAvg: ``theta_T - theta_0`` after
    ``knowledge.steps`` SGD steps with ``knowledge.lr``, taking the ``B`` samples in their
    given order in batches of ``knowledge.batch_size`` each epoch
    (:func:`leakage.simulation.batch_schedule`, the simulator's rule). The attacker does not
    know the client's shuffle; with the samples as free variables the order is only a
    naming, exact for one epoch and an approximation for several.
    """
    loss_gradient = grad(_loss(knowledge.model))
    if knowledge.algorithm == "fedsgd":

        def gradient(params: Params, inputs: Tensor, targets: Tensor) -> Tensor:
            return torch.cat([g.reshape(-1) for g in loss_gradient(params, inputs, targets).values()])

        return gradient
    if knowledge.lr is None:
        raise ValueError("unrolling FedAvg steps needs knowledge.lr")
    lr = float(knowledge.lr)
    # the client's own rule; each epoch walks the B samples in the same order here
    schedule = batch_schedule(
        knowledge.num_samples, batch_size=knowledge.batch_size, local_epochs=knowledge.local_epochs
    )

    def update(params: Params, inputs: Tensor, targets: Tensor) -> Tensor:
        current = params
        for batch in schedule:
            step = loss_gradient(current, inputs[batch], targets[batch])
            current = {name: current[name] - lr * step[name] for name in current}
        return torch.cat([(current[name] - params[name]).reshape(-1) for name in params])

    return update


def make_single_upload_function(knowledge: Knowledge) -> UploadFunction:
    """Return the same ``upload`` as :func:`make_upload_function`, for one candidate at a time.

    A FedSGD gradient is taken with plain autograd (``create_graph=True``) instead of
    ``torch.func.grad``: the result is the same, but it skips the functional transforms'
    wrapping, which costs about a fifth of an evaluation of the small models DLG attacks
    (measured on the sigmoid LeNet, one thread). It cannot run under ``vmap``; FedAvg
    updates are unrolled by :func:`make_upload_function`.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 2))
    >>> knowledge = Knowledge(model=net, input_shape=(3,), num_classes=2)
    >>> params = dict(net.named_parameters())
    >>> inputs, targets = torch.ones(1, 3), torch.tensor([1])
    >>> single = make_single_upload_function(knowledge)(params, inputs, targets)
    >>> torch.allclose(single, make_upload_function(knowledge)(params, inputs, targets))
    True
    """
    if knowledge.algorithm != "fedsgd":
        return make_upload_function(knowledge)
    loss = _loss(knowledge.model)

    def gradient(params: Params, inputs: Tensor, targets: Tensor) -> Tensor:
        leaves = {name: p if p.requires_grad else p.detach().requires_grad_(True) for name, p in params.items()}
        grads = torch.autograd.grad(loss(leaves, inputs, targets), list(leaves.values()), create_graph=True)
        return torch.cat([g.reshape(-1) for g in grads])

    return gradient


def observed_target(observation: Observation, knowledge: Knowledge) -> Tensor:
    """Return what a predicted upload must match: the gradient for FedSGD, else the update."""
    if knowledge.algorithm == "fedsgd":
        return observation.gradient(knowledge)
    if observation.kind != "update":
        raise ConfigError("a FedAvg attack needs the observed update, not a gradient")
    return observation.value


def l2_distance(predicted: Tensor, observed: Tensor) -> Tensor:
    """Return ``||predicted - observed||^2`` over the last dimension (DLG's objective)."""
    return (predicted - observed).pow(2).sum(-1)


def cosine_distance(predicted: Tensor, observed: Tensor) -> Tensor:
    """Return ``1 - cos(predicted, observed)`` over the last dimension (Geiping et al.'s objective)."""
    dot = (predicted * observed).sum(-1)
    norms = predicted.norm(dim=-1) * observed.norm(dim=-1)
    distance: Tensor = 1 - dot / norms.clamp_min(1e-30)
    return distance


def total_variation(inputs: Tensor) -> Tensor:
    """Return the mean anisotropic total variation of images ``[..., C, H, W]`` (0 for vectors).

    >>> total_variation(torch.zeros(1, 3, 4, 4)).item()
    0.0
    """
    if inputs.dim() < 3:
        return inputs.new_zeros(())
    vertical = (inputs[..., 1:, :] - inputs[..., :-1, :]).abs().mean()
    horizontal = (inputs[..., :, 1:] - inputs[..., :, :-1]).abs().mean()
    return vertical + horizontal
