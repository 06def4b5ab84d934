"""One model-inconsistency round played for real: per-client models, the real protocol, the server's estimate.

The attack's model lives in :mod:`attacks.model_inconsistency` (:func:`dead_parameters`);
this module plays it against secure aggregation (:mod:`defenses.secure_aggregation`),
which is why it sits above both (plugins do not import each other). See that module's
docstring for the attack and for what binding keys to the model does to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from attacks.model_inconsistency import dead_parameters
from defenses.secure_aggregation import (
    ClientChecks,
    ProtocolConfig,
    RingEncoding,
    SigningKey,
    architecture_digest,
    complete_graph,
    default_degree,
    harary_graph,
    model_digest,
    run_protocol,
)
from leakage.errors import ConfigError
from leakage.models import ParameterLayout
from leakage.simulation import make_loss, train_client

__all__ = ["InconsistencyRound", "local_batches", "model_inconsistency_round"]


@dataclass(frozen=True)
class InconsistencyRound:
    """The server's result of one inconsistent round.

    Attributes:
        target: the client sent the real model.
        n_clients: clients in the round.
        estimate: the target's update as the server recovered it: the summed update on the
            silenced coordinates, the mean over the clients elsewhere; ``None`` if the round aborted.
        true_update: the target's true update.
        encoded_update: the target's update as the protocol encoded it (what "exact" compares with).
        silenced: ``[P]`` bool, the coordinates the dead model's updates never move.
        exact: the estimate equals ``encoded_update`` on every silenced coordinate.
        relative_error: ``||estimate - true|| / ||true||`` over all coordinates, or ``None``.
        relative_error_silenced: the same over the silenced coordinates (the fixed-point
            encoding's rounding only), or ``None``.
        aborted: why the round aborted, or ``None``.
        refusals: each refusing client and its reason.
        vetted: whether every client's model passed model vetting (same architecture as announced).
    """

    target: int
    n_clients: int
    estimate: Tensor | None
    true_update: Tensor
    encoded_update: Tensor
    silenced: Tensor
    exact: bool
    relative_error: float | None
    aborted: str | None
    refusals: Mapping[int, str] = field(default_factory=dict)
    vetted: bool = True
    relative_error_silenced: float | None = None


def model_inconsistency_round(
    model: nn.Module,
    params: Tensor,
    client_data: Sequence[tuple[Tensor, Tensor]],
    *,
    target: int = 0,
    lr: float = 0.1,
    local_epochs: int = 1,
    batch_size: int | None = None,
    checks: ClientChecks | None = None,
    signing_keys: Mapping[int, SigningKey] | None = None,
    clip_range: float = 1.0,
    ring_bits: int = 32,
    protocol: bool = True,
    threshold: int | None = None,
    entropy: Callable[[int], bytes] = os.urandom,
) -> InconsistencyRound:
    """Play one round in which only ``target`` gets the real model; every other client a dead one.

    Args:
        model: the architecture (its weights are not read).
        params: the real global model, flat ``[P]``.
        client_data: ``(inputs, targets)`` per client, in client order.
        target: the index of the client sent the real model.
        lr, local_epochs, batch_size: the clients' local SGD (FedSGD: one epoch, ``batch_size=None``).
        checks: the clients' checks; ``bind_model`` makes them bind keys to their model.
        signing_keys: identity keys where ``checks`` has a directory.
        clip_range, ring_bits: the fixed-point encoding of updates.
        protocol: run the secure aggregation protocol message by message; ``False`` sums the
            encoded updates directly (what the protocol returns, for large rounds), and then
            ``checks`` apply only by their outcome: binding the model aborts the round.
        threshold: the protocol's ``t``; default a majority of the smallest sharing group.
        entropy: the protocol's randomness.
    """
    n = len(client_data)
    if not 0 <= target < n:
        raise ConfigError(f"target must be a client index in [0, {n}), got {target}")
    layout = ParameterLayout.of(model)
    loss = make_loss(model)
    real = params.detach().to(torch.float32)
    dead = dead_parameters(model, real)
    silenced = torch.ones(layout.num_parameters, dtype=torch.bool)
    updates = torch.zeros(n, layout.num_parameters)
    for client, (inputs, labels) in enumerate(client_data):
        start = real if client == target else dead
        updates[client], _ = train_client(loss, layout, start, local_batches(inputs, labels, local_epochs, batch_size),
                                          lr=lr)
        if client != target:
            silenced &= updates[client] == 0
    truth = updates[target].clone()
    architecture = architecture_digest(model)
    vetted = checks is None or checks.announced_architecture in (None, architecture)
    digests = {c: model_digest(real if c == target else dead, architecture=architecture) for c in range(n)}
    encoding = RingEncoding.fitting(ring_bits=ring_bits, clip_range=clip_range, max_total_weight=n)
    generator = torch.Generator().manual_seed(0)
    words, _clipped = encoding.encode(updates.double(), torch.ones(n, dtype=torch.int64), generator=generator)
    encoded_target, _ = encoding.decode_sum(words[target])
    refusals: Mapping[int, str] = {}
    if not vetted:
        return InconsistencyRound(target, n, None, truth, encoded_target.float(), silenced, False, None,
                                  "every client refused a model whose architecture differs from the announced one",
                                  dict.fromkeys(range(n), "architecture differs from the announced one"), False)
    if protocol:
        members = list(range(n))
        graph = complete_graph(members) if n <= 100 else harary_graph(members, default_degree(n),
                                                                       np.random.default_rng(0))
        group = min(len(peers) for peers in graph.values()) + 1
        config = ProtocolConfig(entropy(16), ring_bits, layout.num_parameters + 1, threshold or group // 2 + 1, graph,
                                model_digest=digests[target] if checks is not None and checks.bind_model else b"")
        result = run_protocol({c: words[c] for c in range(n)}, config, checks=checks, signing_keys=signing_keys,
                              model_digests=digests, entropy=entropy)
        total, aborted, refusals = result.total, result.aborted, result.refusals
    elif checks is not None and checks.bind_model:
        total, aborted = None, "clients holding different models cannot decrypt each other's shares"
        refusals = dict.fromkeys(range(n), "holds another model than a peer")
    else:
        total, aborted = encoding.reduce(np.add.reduce(words, axis=0, dtype=words.dtype)), None  # wraps mod 2^k
    if total is None:
        return InconsistencyRound(target, n, None, truth, encoded_target.float(), silenced, False, None, aborted,
                                  refusals)
    summed, _ = encoding.decode_sum(total)
    estimate = summed.float()
    # where every client moved the model (the output bias), the mean over the n clients is the best guess
    estimate[~silenced] = estimate[~silenced] / n
    exact = bool(torch.equal(estimate[silenced], encoded_target.float()[silenced]))
    return InconsistencyRound(target, n, estimate, truth, encoded_target.float(), silenced, exact,
                              _relative(estimate, truth), None, refusals,
                              relative_error_silenced=_relative(estimate[silenced], truth[silenced]))


def _relative(estimate: Tensor, truth: Tensor) -> float:
    return float((estimate.double() - truth.double()).norm() / truth.double().norm().clamp(min=1e-300))


def local_batches(inputs: Tensor, labels: Tensor, epochs: int, batch_size: int | None) -> list[tuple[Tensor, Tensor]]:
    """One client's local steps in order: ``epochs`` passes over its records in batches of ``batch_size``
    (``None``: all at once)."""
    size = len(inputs) if batch_size is None else batch_size
    return [(inputs[i:i + size], labels[i:i + size]) for _ in range(epochs) for i in range(0, len(inputs), size)]
