"""The NumPyClient :func:`~leakage.integrations.flower.run_flower_simulation` runs: torch SGD by the rule."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from flwr.app import Context
from flwr.client import Client, NumPyClient
from flwr.common import NDArrays, Scalar
from torch import Tensor, nn

from leakage.integrations.flower.arrays import ndarrays_to_state_dict, state_dict_to_ndarrays
from leakage.integrations.flower.client import record_sample_order
from leakage.recording import AggregationRule


@dataclass(frozen=True)
class LocalData:
    """One client's samples: dataset ``indices [n]`` and their ``inputs [n, ...]`` and ``targets [n]``."""

    indices: Tensor
    inputs: Tensor
    targets: Tensor


def local_steps(rule: AggregationRule, num_samples: int) -> list[slice]:
    """Return the local batches of a client holding ``num_samples``, as slices of its data in order.

    FedSGD: one batch, the first ``batch_size`` samples (all of them for ``None``).
    FedAvg: ``local_epochs`` passes over the data in minibatches of ``batch_size``.

    >>> local_steps(AggregationRule("fedavg", local_epochs=2, batch_size=2), 3)
    [slice(0, 2, None), slice(2, 3, None), slice(0, 2, None), slice(2, 3, None)]
    >>> local_steps(AggregationRule("fedsgd", batch_size=2), 3)
    [slice(0, 2, None)]
    """
    batch = num_samples if rule.batch_size is None else min(rule.batch_size, num_samples)
    if rule.algorithm == "fedsgd":
        return [slice(0, batch)]
    epoch = [slice(start, min(start + batch, num_samples)) for start in range(0, num_samples, batch)]
    return epoch * rule.local_epochs


class TorchClient(NumPyClient):
    """Trains ``model`` on ``data`` by ``rule`` with torch SGD and mean cross-entropy loss."""

    def __init__(self, model: nn.Module, data: LocalData, rule: AggregationRule, context: Context) -> None:
        self.model = model
        self.data = data
        self.rule = rule
        self.context = context
        self.keys = list(model.state_dict())

    def get_parameters(self, config: dict[str, Scalar]) -> NDArrays:
        """Return the model's arrays in ``state_dict`` order (0-d tensors as 1-d)."""
        return state_dict_to_ndarrays(self.model.state_dict())

    def fit(self, parameters: NDArrays, config: dict[str, Scalar]) -> tuple[NDArrays, int, dict[str, Scalar]]:
        """Train from ``parameters``; return the local model and the samples of its step (FedSGD) or data (FedAvg)."""
        self._load(parameters)
        steps = local_steps(self.rule, len(self.data.indices))
        optimizer = torch.optim.SGD(self.model.parameters(), lr=self.rule.lr)
        self.model.train()
        for step in steps:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(self.model(self.data.inputs[step]), self.data.targets[step])
            torch.autograd.backward(loss)
            optimizer.step()
        record_sample_order(self.context, torch.cat([self.data.indices[step] for step in steps]))
        num_examples = steps[0].stop if self.rule.algorithm == "fedsgd" else len(self.data.indices)
        return self.get_parameters({}), num_examples, {}

    def evaluate(self, parameters: NDArrays, config: dict[str, Scalar]) -> tuple[float, int, dict[str, Scalar]]:
        """Return the mean cross-entropy of ``parameters`` on the local data."""
        self._load(parameters)
        self.model.eval()
        with torch.no_grad():
            loss = nn.functional.cross_entropy(self.model(self.data.inputs), self.data.targets)
        return float(loss), len(self.data.indices), {}

    def _load(self, parameters: NDArrays) -> None:
        self.model.load_state_dict(ndarrays_to_state_dict(parameters, self.keys, like=self.model.state_dict()))


@dataclass(frozen=True)
class TorchClientFactory:
    """The ``client_fn`` of the simulation: client ``partition-id`` gets a fresh copy of the model."""

    model: nn.Module
    data: Sequence[LocalData]
    rule: AggregationRule

    def __call__(self, context: Context) -> Client:
        client_id = int(context.node_config["partition-id"])
        return TorchClient(copy.deepcopy(self.model), self.data[client_id], self.rule, context).to_client()
