"""Label recovery from the last layer's gradient or update.

For a softmax cross-entropy classifier whose last layer is ``z = W h + b``, the bias
gradient of a batch is ``dL/db_c = (1/B) sum_i (p_ic - y_ic)``: negative only where the
labels sit (``p_ic < 1``). One sample: its label is the one negative entry (Zhao et al.,
"iDLG: Improved Deep Leakage from Gradients", 2020). A batch: the count of class ``c``
is ``n_c = B (p_c_mean - dL/db_c)`` (Geng et al., "Towards General Deep Leakage in
Federated Learning", 2021), with the batch's mean prediction ``p_c_mean`` estimated from
the model's predictions on inputs drawn in the valid box. A FedAvg update is a
parameter difference, ``-lr`` times a sum of step gradients, so its sign is flipped and
its scale divided by ``lr * epochs * B / batch_size`` first (the client's batches as
:func:`leakage.simulation.batch_schedule` cuts them). Without a bias the row sums of
``dL/dW`` play its role (features after ReLU or sigmoid are non-negative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from attacks.base import Knowledge, Observation
from leakage.checks import require_choice
from leakage.errors import ConfigError, ThreatModelError
from leakage.models import ParameterLayout
from leakage.simulation import batch_schedule

__all__ = ["LabelStrategy", "LastLayer", "last_layer", "recover_labels"]

LabelStrategy = Literal["auto", "single", "distinct", "counts"]
_STRATEGIES: tuple[LabelStrategy, ...] = get_args(LabelStrategy)


@dataclass(frozen=True)
class LastLayer:
    """Where the classifier's last linear layer sits in the flat parameter vector."""

    weight: slice
    bias: slice | None
    num_classes: int
    in_features: int


def last_layer(model: nn.Module, num_classes: int) -> LastLayer:
    """Return the flat-vector location of ``model``'s last ``nn.Linear`` with ``num_classes`` outputs.

    Raises:
        ThreatModelError: the model does not end in such a layer.
    """
    layout = ParameterLayout.of(model)
    offsets = {}
    start = 0
    for name, size in zip(layout.names, layout.sizes, strict=True):
        offsets[name] = slice(start, start + size)
        start += size
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == num_classes:
            found = (name, module)
    if found is None:
        raise ThreatModelError(f"label recovery needs a last nn.Linear layer with {num_classes} outputs")
    name, module = found
    prefix = f"{name}." if name else ""
    bias = offsets.get(f"{prefix}bias") if module.bias is not None else None
    return LastLayer(offsets[f"{prefix}weight"], bias, num_classes, module.in_features)


def _gradient_signal(observation: Observation, knowledge: Knowledge, layer: LastLayer) -> Tensor:
    """Return the per-class signal ``s_c``: the mean-loss bias gradient (or row sums of ``dW``)."""
    value = observation.value
    if layer.bias is not None:
        signal = value[layer.bias]
    else:
        signal = value[layer.weight].reshape(layer.num_classes, layer.in_features).sum(1)
    if observation.kind == "gradient":
        return signal
    if knowledge.lr is None:
        raise ThreatModelError("label recovery from an update needs knowledge.lr to undo the step size")
    schedule = batch_schedule(
        knowledge.num_samples,
        batch_size=knowledge.batch_size,
        local_epochs=knowledge.local_epochs,
        algorithm=knowledge.algorithm,
    )
    # update = -lr * (sum of the steps' mean gradients); with equal batches the steps
    # sum to (samples read / batch size) times the full-batch mean gradient.
    samples_read: int = sum(step.stop - step.start for step in schedule)
    full_batch: int = schedule[0].stop - schedule[0].start
    return -signal / (knowledge.lr * samples_read / full_batch)


def recover_labels(
    observation: Observation,
    knowledge: Knowledge,
    *,
    strategy: LabelStrategy = "auto",
    generator: torch.Generator | None = None,
    probes: int = 64,
) -> Tensor:
    """Return ``B`` labels (sorted class indices) recovered from the last layer.

    Args:
        observation: the observed gradient or update.
        knowledge: needs ``num_samples``, ``num_classes`` and, for updates, ``lr``.
        strategy: ``"single"`` (one sample: the most negative entry), ``"distinct"``
            (``B`` distinct labels: the ``B`` most negative entries), ``"counts"``
            (repeated labels: per-class counts from the bias gradient), or ``"auto"``
            (``single`` for one sample, else ``counts``).
        generator: draws the probe inputs that estimate the mean prediction.
        probes: number of probe inputs.

    Raises:
        ConfigError: unknown strategy, or ``distinct`` with more samples than classes.
        ThreatModelError: the model has no suitable last layer, or counts need a bias.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3))
    >>> loss = nn.functional.cross_entropy(net(torch.ones(1, 4)), torch.tensor([2]))
    >>> obs = Observation.from_gradients(net, torch.autograd.grad(loss, list(net.parameters())))
    >>> recover_labels(obs, Knowledge(model=net, input_shape=(4,), num_classes=3)).tolist()
    [2]
    """
    strategy = require_choice("label strategy", strategy, _STRATEGIES)
    count = knowledge.num_samples
    if strategy == "auto":
        strategy = "single" if count == 1 else "counts"
    if strategy == "single" and count != 1:
        raise ConfigError(f"label strategy 'single' recovers one sample's label, but num_samples is {count}")
    if strategy == "distinct" and count > knowledge.num_classes:
        raise ConfigError(
            f"num_samples={count} is larger than label strategy 'distinct' can support "
            f"(at most num_classes={knowledge.num_classes} distinct labels); use strategy 'counts'"
        )
    layer = last_layer(knowledge.model, knowledge.num_classes)
    signal = _gradient_signal(observation, knowledge, layer)
    if strategy in ("single", "distinct"):
        return torch.sort(torch.argsort(signal)[:count]).values
    if layer.bias is None:
        raise ThreatModelError("label counts need a bias in the last layer; use strategy 'distinct'")
    mean_prediction = _mean_prediction(observation, knowledge, generator, probes)
    estimate = count * (mean_prediction - signal.to(mean_prediction))
    return _round_counts(estimate, count, present=signal < 0)


def _mean_prediction(
    observation: Observation, knowledge: Knowledge, generator: torch.Generator | None, probes: int
) -> Tensor:
    """Estimate the batch's mean softmax output from probe inputs in the valid box."""
    from torch.func import functional_call

    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    params = ParameterLayout.of(knowledge.model).unflatten(observation.params.detach())
    low, high = knowledge.bounds(observation.params)
    uniform = torch.rand((probes, *knowledge.input_shape), generator=generator, dtype=observation.params.dtype)
    uniform = uniform.to(observation.params.device)
    inputs = low + uniform * (high - low)
    model = knowledge.model.to(observation.params.device)
    with torch.no_grad():
        logits = functional_call(model, params, (inputs,))
    return torch.softmax(logits.double(), dim=-1).mean(0)


def _round_counts(estimate: Tensor, total: int, *, present: Tensor) -> Tensor:
    """Round non-negative count estimates to integers summing to ``total`` (largest remainders).

    A class with a negative signal certainly occurs, so it keeps at least one sample.
    """
    counts = estimate.clamp_min(0)
    floors = counts.floor().to(torch.int64)
    floors = torch.where(present & (floors == 0), torch.ones_like(floors), floors)
    while int(floors.sum()) > total:  # too many: take from the largest overshoot
        over = (floors - counts).masked_fill(floors <= present.to(torch.int64), float("-inf"))
        floors[int(torch.argmax(over))] -= 1
    while int(floors.sum()) < total:  # too few: give to the largest remainder
        floors[int(torch.argmax(counts - floors))] += 1
    return torch.repeat_interleave(torch.arange(len(floors)), floors)
