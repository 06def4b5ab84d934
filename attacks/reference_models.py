"""Reference models trained together: ``K`` copies of one architecture in one ``vmap`` per SGD step.

Membership attacks that calibrate per record (LiRA, RMIA) need many models of the
target's architecture, each trained on its own subset of the attacker's data. Here they
train at once, as pure functions of stacked parameters (every tensor ``[K, ...]``):

- :func:`initial_parameters` draws ``K`` independent initialisations from a generator
  with torch's default rules;
- :func:`minibatch_schedule` gives every model its own shuffle of its own records
  (``datasets_mask[k]``) each epoch, in batches of ``batch_size``; a model holding
  fewer records than the largest is padded with weight 0, so all ``K`` share a step;
- :func:`train_reference_models` runs plain SGD ``theta_k <- theta_k - lr * grad`` of
  each model's mean loss over the real records of its batch, every step one ``vmap``
  of the loss over the ``K`` models and one backward pass;
- :func:`reference_logits` evaluates every model on every record in one ``vmap``, and
  :func:`scaled_logits` / :func:`true_class_probabilities` turn logits into the
  signals the attacks read.

Draws come in this order from the one generator: the ``K`` initialisations, then the
epochs' shuffles, so a caller can reproduce the batches a run used.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from leakage.checks import require_int, require_optional_int, require_positive_float
from leakage.errors import ConfigError
from leakage.simulation import LossName, make_weighted_loss, mixes_samples

__all__ = [
    "MinibatchSchedule",
    "initial_parameters",
    "minibatch_schedule",
    "reference_logits",
    "scaled_logits",
    "train_reference_models",
    "true_class_probabilities",
]

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
_RECORDS_PER_EVALUATION = 1024  # records evaluated per vmap call, which bounds activation memory


@dataclass(frozen=True)
class MinibatchSchedule:
    """The batch every reference model reads at every step.

    Attributes:
        indices: ``[S, K, B]`` int64 record indices; model ``k`` reads ``indices[s, k]`` at step ``s``.
        weights: ``[S, K, B]`` each record's weight in the step's loss: ``1 / (real records
            in the batch)`` for a real record and 0 for padding (which repeats one of the
            model's own records, so no model ever reads another's data).
    """

    indices: Tensor
    weights: Tensor

    @property
    def steps(self) -> int:
        """Number of SGD steps ``S``."""
        return int(self.indices.shape[0])


def initial_parameters(model: nn.Module, count: int, *, generator: torch.Generator) -> dict[str, Tensor]:
    """Return ``count`` independent initialisations of ``model``, stacked: ``{name: [count, *shape]}``.

    Each copy is drawn from ``generator`` with torch's default rules (``Linear``,
    ``Conv``: Kaiming-uniform weights with ``a = sqrt(5)`` and biases uniform in
    ``+-1 / sqrt(fan_in)``; normalisation layers: weight 1, bias 0; ``Embedding``:
    standard normal). ``model``'s own weights are neither read nor changed.

    Raises:
        ConfigError: a module holds parameters none of these rules covers.

    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    >>> stacked = initial_parameters(net, 4, generator=torch.Generator().manual_seed(0))
    >>> tuple(stacked["0.weight"].shape), bool((stacked["0.weight"][0] != stacked["0.weight"][1]).any())
    ((4, 2, 3), True)
    """
    count = require_int("count", count, minimum=1)
    template = copy.deepcopy(model)
    stacked = {name: torch.empty(count, *p.shape, dtype=p.dtype) for name, p in template.named_parameters()}
    with torch.no_grad():
        for index in range(count):
            for module in template.modules():
                _draw_default(module, generator)
            for name, parameter in template.named_parameters():
                stacked[name][index] = parameter
    return stacked


def _draw_default(module: nn.Module, generator: torch.Generator) -> None:
    """Redraw ``module``'s own parameters with torch's default rule, from ``generator``."""
    if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
        nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
        if module.bias is not None:
            bound = 1.0 / math.sqrt(module.weight[0].numel()) if module.weight[0].numel() else 0.0
            module.bias.uniform_(-bound, bound, generator=generator)
    elif isinstance(module, _NORMS):
        if getattr(module, "weight", None) is not None:
            module.weight.fill_(1.0)
        if getattr(module, "bias", None) is not None:
            module.bias.fill_(0.0)
    elif isinstance(module, nn.Embedding):
        module.weight.normal_(generator=generator)
    elif any(True for _ in module.parameters(recurse=False)):
        raise ConfigError(
            f"reference models cannot initialise module {type(module).__name__}: only Linear, Conv, "
            "normalisation and Embedding layers are drawn from the generator"
        )


def minibatch_schedule(
    datasets_mask: Tensor, *, epochs: int, batch_size: int | None, generator: torch.Generator, dtype: torch.dtype
) -> MinibatchSchedule:
    """Return every model's batches: each epoch a fresh shuffle of its own records, in batches of ``batch_size``.

    Every epoch has ``ceil(max_k n_k / batch_size)`` steps, ``n_k = datasets_mask[k].sum()``;
    model ``k``'s batches are consecutive slices of its shuffle (the last one smaller),
    and after its ``ceil(n_k / batch_size)`` steps it idles (its later batches weigh 0).

    Args:
        datasets_mask: ``[K, N]`` bool, which records each model trains on; every row non-empty.
        epochs: passes over each model's records, >= 1.
        batch_size: records per step, or ``None`` for all of a model's records at once.
        generator: draws the shuffles.
        dtype: of the weights (the parameters' dtype).

    >>> mask = torch.tensor([[True, True, True, False], [False, True, False, False]])
    >>> schedule = minibatch_schedule(mask, epochs=1, batch_size=2, generator=torch.Generator(), dtype=torch.float64)
    >>> schedule.indices.shape, schedule.weights[:, 1].tolist()
    (torch.Size([2, 2, 2]), [[1.0, 0.0], [0.0, 0.0]])
    """
    epochs = require_int("epochs", epochs, minimum=1)
    batch_size = require_optional_int("batch_size", batch_size, minimum=1)
    if datasets_mask.dtype != torch.bool or datasets_mask.dim() != 2:
        raise ConfigError(f"datasets_mask must be a [K, N] bool tensor, got {datasets_mask.dtype} "
                          f"{tuple(datasets_mask.shape)}")
    counts = datasets_mask.sum(dim=1)
    if int(counts.min()) < 1:
        raise ConfigError(f"every reference model needs a record, but rows {_empty_rows(counts)} of datasets_mask "
                          "are empty")
    longest = int(counts.max())
    width = longest if batch_size is None else min(batch_size, longest)
    steps_per_epoch = math.ceil(longest / width)
    positions = torch.arange(steps_per_epoch * width)
    is_real = positions.unsqueeze(0) < counts.unsqueeze(1)  # [K, steps_per_epoch * width]
    indices, weights = [], []
    for _ in range(epochs):
        # sorting uniform keys is a uniform shuffle; others' records sort last and are never read
        keys = torch.rand(datasets_mask.shape, generator=generator, dtype=torch.float64)
        keys = keys.masked_fill(~datasets_mask, 2.0)
        order = torch.argsort(keys, dim=1, stable=True)[:, :longest]
        order = torch.cat([order, order[:, :1].expand(-1, len(positions) - longest)], dim=1)
        order = torch.where(is_real, order, order[:, :1])
        batch_order = order.reshape(-1, steps_per_epoch, width).transpose(0, 1)  # [steps, K, width]
        batch_real = is_real.reshape(-1, steps_per_epoch, width).transpose(0, 1).to(dtype)
        indices.append(batch_order)
        weights.append(batch_real / batch_real.sum(dim=2, keepdim=True).clamp(min=1.0))
    return MinibatchSchedule(torch.cat(indices).contiguous(), torch.cat(weights).contiguous())


def _empty_rows(counts: Tensor) -> list[int]:
    return torch.nonzero(counts == 0).flatten().tolist()[:10]


def train_reference_models(
    model: nn.Module,
    datasets_mask: Tensor,
    inputs: Tensor,
    targets: Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int | None,
    generator: torch.Generator,
    loss: LossName = "cross_entropy",
    start: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Train ``K`` models of ``model``'s architecture, model ``k`` on the records ``datasets_mask[k]``; all at once.

    Plain SGD: every step ``theta_k <- theta_k - lr * grad_theta (1 / |b_k|) sum_{i in b_k} l(theta_k; x_i, y_i)``
    on model ``k``'s batch ``b_k`` from :func:`minibatch_schedule`, from independent
    initialisations (:func:`initial_parameters`) or all from one given model (``start``:
    a round's global model, from which a client trains); every step is one ``vmap`` of
    the loss over the ``K`` models and one backward pass. It equals training each model
    alone on the same batches.

    Args:
        model: the architecture (its weights are not used); in the parameters' dtype.
        datasets_mask: ``[K, N]`` bool, the records each model trains on.
        inputs: ``[N, *input_shape]`` the attacker's records, in ``model``'s dtype.
        targets: ``[N]`` int64 labels.
        epochs, batch_size: of :func:`minibatch_schedule`.
        lr: the SGD learning rate.
        generator: draws the initialisations, then the shuffles.
        loss: the training loss (:data:`leakage.simulation.LOSSES`).
        start: ``{name: tensor}`` of one model's parameters every model starts from; ``None``
            draws ``K`` initialisations (and then no draws come before the shuffles).

    Returns:
        The trained parameters, stacked: ``{name: [K, *shape]}``.

    Raises:
        ConfigError: bad arguments, or a model whose output for a record depends on the rest of
            its batch (batch normalisation), which padded batches would change.

    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    >>> mask = torch.tensor([[True, False, True], [False, True, True]])
    >>> params = train_reference_models(net, mask, torch.randn(3, 2, generator=torch.Generator()),
    ...     torch.tensor([0, 1, 1]), epochs=2, lr=0.1, batch_size=1, generator=torch.Generator())
    >>> params["0.weight"].shape
    torch.Size([2, 2, 2])
    """
    lr = require_positive_float("lr", lr)
    if mixes_samples(model):
        raise ConfigError("reference models are trained with padded batches, which batch normalisation would change")
    if datasets_mask.shape[1:] != targets.shape or inputs.shape[0] != targets.shape[0]:
        raise ConfigError(f"datasets_mask {tuple(datasets_mask.shape)}, inputs {tuple(inputs.shape)} and targets "
                          f"{tuple(targets.shape)} must hold the same N records")
    count = int(datasets_mask.shape[0])
    if start is None:
        params = initial_parameters(model, count, generator=generator)
    else:
        shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        given = {name: tuple(value.shape) for name, value in start.items()}
        if given != shapes:
            raise ConfigError(f"start must hold the model's parameters {shapes}, got {given}")
        params = {name: value.detach().to(next(model.parameters()).dtype).unsqueeze(0).repeat(
            count, *([1] * value.dim())) for name, value in start.items()}
    dtype = next(iter(params.values())).dtype
    schedule = minibatch_schedule(datasets_mask, epochs=epochs, batch_size=batch_size, generator=generator, dtype=dtype)
    batch_loss = vmap(make_weighted_loss(copy.deepcopy(model).train(), loss))
    names, tensors = list(params), [value.requires_grad_(True) for value in params.values()]
    for indices, weights in zip(schedule.indices, schedule.weights, strict=True):
        # model k's loss depends on its own parameters only, so the gradient of the sum over
        # models is every model's own gradient: one vmapped forward and one backward per step
        # (faster than vmap(grad(...)), whose per-call transform overhead dominates small models)
        total = batch_loss(dict(zip(names, tensors, strict=True)), inputs[indices], targets[indices], weights).sum()
        gradients = torch.autograd.grad(total, tensors)
        with torch.no_grad():
            for value, gradient in zip(tensors, gradients, strict=True):
                value.sub_(gradient, alpha=lr)
    return {name: value.detach() for name, value in zip(names, tensors, strict=True)}


def reference_logits(model: nn.Module, params: dict[str, Tensor], inputs: Tensor) -> Tensor:
    """Return every stacked model's logits on every record, ``[K, N, C]``, in evaluation mode.

    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3))
    >>> stacked = initial_parameters(net, 4, generator=torch.Generator())
    >>> reference_logits(net, stacked, torch.zeros(5, 2)).shape
    torch.Size([4, 5, 3])
    """
    net = copy.deepcopy(model).eval()

    def forward(named: dict[str, Tensor], records: Tensor) -> Tensor:
        output: Tensor = functional_call(net, named, (records,))
        return output

    evaluate = vmap(forward, in_dims=(0, None))
    with torch.no_grad():
        return torch.cat([evaluate(params, chunk) for chunk in torch.split(inputs, _RECORDS_PER_EVALUATION)], dim=1)


def scaled_logits(logits: Tensor, targets: Tensor) -> Tensor:
    """Return LiRA's scaled logit ``log(p_y / (1 - p_y))`` of the true class, float64 ``[..., N]``.

    Computed as ``z_y - logsumexp_{j != y} z_j`` from logits ``[..., N, C]``, so it stays
    exact where ``p_y`` rounds to 1.

    >>> scaled_logits(torch.tensor([[0.0, 0.0], [100.0, 0.0]]), torch.tensor([0, 0])).tolist()
    [0.0, 100.0]
    """
    values = logits.double()
    is_true = F.one_hot(targets, values.shape[-1]).bool().expand_as(values)
    true = values.masked_select(is_true).reshape(values.shape[:-1])
    return true - values.masked_fill(is_true, float("-inf")).logsumexp(dim=-1)


def true_class_probabilities(logits: Tensor, targets: Tensor) -> Tensor:
    """Return the softmax probability of the true class, float64 ``[..., N]``, from logits ``[..., N, C]``.

    >>> true_class_probabilities(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).tolist()
    [0.5]
    """
    values = torch.log_softmax(logits.double(), dim=-1)
    is_true = F.one_hot(targets, values.shape[-1]).bool().expand_as(values)
    return values.masked_select(is_true).reshape(values.shape[:-1]).exp()
