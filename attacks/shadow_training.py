"""Shadow training: the updates an attacker simulates on its own auxiliary data.

Property inference (Melis et al. 2019) trains its classifier on updates the attacker
computes itself, shaped like what it observes: each example is the mean update of one
client trained on a batch drawn from one pool and ``k - 1`` clients drawn from another,
at the observed global model, with the public training rule (FedSGD or FedAvg steps).
Clients are trained together with ``vmap`` in memory-bounded chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from leakage.checks import require_choice, require_int, require_positive_float
from leakage.data import Dataset
from leakage.errors import ConfigError
from leakage.models import ParameterLayout
from leakage.simulation.local_training import (
    LossName,
    make_loss,
    train_clients_vectorised,
)

__all__ = ["ShadowUpdates", "shadow_updates"]

_CHUNK_BYTES = 32 << 20  # simulated clients trained at once stay under this much memory


@dataclass(frozen=True)
class ShadowUpdates:
    """Observations an attacker simulated on its auxiliary data.

    Attributes:
        updates: ``[E, P]`` float32; row ``e`` is the mean update of the ``k`` simulated
            clients of example ``e``.
        samples: ``[E, k, n]`` auxiliary indices each simulated client trained on;
            client 0 of each example drew from the target pool, the others from the
            others' pool.
    """

    updates: Tensor
    samples: Tensor


def shadow_updates(
    model: nn.Module,
    params: Tensor,
    auxiliary: Dataset,
    target_pool: Tensor,
    others_pool: Tensor,
    *,
    examples: int,
    clients_mixed: int,
    samples_per_client: int,
    lr: float,
    generator: torch.Generator,
    algorithm: Literal["fedsgd", "fedavg"] = "fedsgd",
    batch_size: int | None = None,
    local_epochs: int = 1,
    loss: LossName = "cross_entropy",
) -> ShadowUpdates:
    """Simulate ``examples`` observed updates, each the mean of ``clients_mixed`` clients' updates.

    Every simulated client starts at ``params`` and trains ``model`` on
    ``samples_per_client`` auxiliary samples, as the FL round's public rule says:
    FedSGD takes one step ``u = -lr * grad L(params; samples)``; FedAvg runs
    ``local_epochs`` passes over its samples, reshuffled each epoch, in batches of
    ``batch_size`` (the last one smaller). Client 0 of every example draws its samples
    from ``target_pool``, the other ``clients_mixed - 1`` from ``others_pool``. Samples
    are distinct within a client; clients take consecutive slices of fresh shuffles of
    a pool, so they are disjoint until the pool runs out. All clients are trained
    together, vmapped (:func:`~leakage.simulation.local_training.train_clients_vectorised`)
    in chunks that bound memory.

    Args:
        model: the architecture (its own weights are not used).
        params: flat ``[P]`` starting parameters.
        auxiliary: the attacker's data.
        target_pool, others_pool: int64 indices into ``auxiliary``.
        examples: ``E``, number of simulated observations, >= 1.
        clients_mixed: ``k``, clients averaged into each observation, >= 1.
        samples_per_client: ``n``, samples each client trains on, >= 1.
        lr: client learning rate.
        generator: the only source of randomness.
        algorithm, batch_size, local_epochs, loss: the local training rule.

    Raises:
        ConfigError: a count is not a positive integer, a pool holds fewer than
            ``samples_per_client`` samples, or the parameters do not fit ``model``.

    >>> from leakage import load_dataset, create_model
    >>> data = load_dataset("binary_features", n_samples=100, n_features=4)
    >>> net = create_model("logreg", input_shape=(4,), num_classes=2, generator=torch.Generator())
    >>> params, pool = torch.zeros(10), torch.arange(100)
    >>> shadow = shadow_updates(net, params, data, pool, pool, examples=3, clients_mixed=2,
    ...                         samples_per_client=8, lr=0.1, generator=torch.Generator().manual_seed(0))
    >>> tuple(shadow.updates.shape), tuple(shadow.samples.shape)
    ((3, 10), (3, 2, 8))
    """
    examples = require_int("examples", examples, minimum=1)
    clients_mixed = require_int("clients_mixed", clients_mixed, minimum=1)
    samples_per_client = require_int("samples_per_client", samples_per_client, minimum=1)
    local_epochs = require_int("local_epochs", local_epochs, minimum=1)
    lr = require_positive_float("lr", lr)
    require_choice("algorithm", algorithm, ("fedsgd", "fedavg"))
    if batch_size is not None:
        batch_size = require_int("batch_size", batch_size, minimum=1)
    layout = ParameterLayout.of(model)
    if params.shape != (layout.num_parameters,):
        raise ConfigError(
            f"params must be a flat vector of the model's {layout.num_parameters} parameters, "
            f"got shape {tuple(params.shape)}"
        )
    for name, pool in (("target_pool", target_pool), ("others_pool", others_pool)):
        if not isinstance(pool, Tensor) or pool.ndim != 1 or pool.dtype != torch.int64:
            raise ConfigError(f"{name} must be a 1-D int64 tensor of auxiliary indices, got {pool!r:.80}")
        if len(pool) < samples_per_client:
            raise ConfigError(f"{name} holds {len(pool)} samples, fewer than samples_per_client={samples_per_client}")
    steps = _step_sizes(algorithm, samples_per_client, batch_size, local_epochs)
    loss_function = make_loss(model, loss)
    first = _draw_sets(target_pool, examples, samples_per_client, generator).unsqueeze(1)
    rest = _draw_sets(others_pool, examples * (clients_mixed - 1), samples_per_client, generator)
    samples = torch.cat([first, rest.reshape(examples, clients_mixed - 1, samples_per_client)], dim=1)
    sample_bytes = 4 * (samples_per_client * math.prod(auxiliary.input_shape) + layout.num_parameters)
    per_chunk = max(1, _CHUNK_BYTES // (clients_mixed * sample_bytes))
    start_params = params.to(torch.float32)
    means: list[Tensor] = []
    for start in range(0, examples, per_chunk):
        members = samples[start : start + per_chunk].reshape(-1, samples_per_client)
        batches = _local_batches(auxiliary, members, steps, shuffle=algorithm == "fedavg", generator=generator)
        updates, _ = train_clients_vectorised(loss_function, layout, start_params, batches, lr=lr)
        means.append(updates.reshape(-1, clients_mixed, layout.num_parameters).mean(dim=1))
    return ShadowUpdates(updates=torch.cat(means), samples=samples)


def _step_sizes(algorithm: str, samples: int, batch_size: int | None, local_epochs: int) -> tuple[int, ...]:
    """Return the batch size of every local SGD step, as the simulator cuts a client's data."""
    if algorithm == "fedsgd":
        return (samples,)
    batch = samples if batch_size is None else min(batch_size, samples)
    per_epoch = [batch] * (samples // batch) + ([samples % batch] if samples % batch else [])
    return tuple(per_epoch * local_epochs)


def _draw_sets(pool: Tensor, rows: int, size: int, generator: torch.Generator) -> Tensor:
    """Return ``[rows, size]`` indices from ``pool``, distinct within a row.

    Rows are consecutive slices of fresh shuffles of the pool: one shuffle serves
    ``len(pool) // size`` rows instead of one draw per row.
    """
    if rows == 0:
        return pool.new_empty(0, size)
    per_shuffle = len(pool) // size
    blocks = [
        pool[torch.randperm(len(pool), generator=generator)[: per_shuffle * size]].reshape(per_shuffle, size)
        for _ in range(math.ceil(rows / per_shuffle))
    ]
    return torch.cat(blocks)[:rows]


def _local_batches(
    auxiliary: Dataset, members: Tensor, steps: Sequence[int], *, shuffle: bool, generator: torch.Generator
) -> list[tuple[Tensor, Tensor]]:
    """Cut each client's samples ``members [C, n]`` into one batch per local step.

    With ``shuffle`` (FedAvg) the samples are put in a fresh random order at the start
    of every epoch; one order serves all clients, whose samples differ anyway.
    """
    batches: list[tuple[Tensor, Tensor]] = []
    samples = members.shape[1]
    position = samples  # the first step starts an epoch
    order = members
    for size in steps:
        if position >= samples:
            order = members[:, torch.randperm(samples, generator=generator)] if shuffle else members
            position = 0
        indices = order[:, position : position + size]
        batches.append((auxiliary.inputs[indices], auxiliary.targets[indices]))
        position += size
    return batches
